"""A worker's error reply names the request it answers, also when one error answers many
(the refusals of the jobs still queued at a drain's deadline share one)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson

from hubbub.contracts.errors import NOT_STARTED, Unavailable
from workers.service import WorkerService


class Publisher:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def publish(self, subject: str, body: bytes, headers: dict[str, str]) -> None:
        self.sent.append(orjson.loads(body))


async def test_one_error_answering_many_jobs_names_each_job_s_request() -> None:
    nc = Publisher()
    worker = SimpleNamespace(nc=nc)
    shared = Unavailable("the worker is shutting down; retry", reason=NOT_STARTED)

    for request_id in ("req-a", "req-b", "req-c"):
        await WorkerService._reply_error(worker, b"_INBOX.r", shared, request_id)  # type: ignore[arg-type]

    assert [body["details"]["request_id"] for body in nc.sent] == ["req-a", "req-b", "req-c"]
    assert {body["details"]["reason"] for body in nc.sent} == {NOT_STARTED}
    assert "request_id" not in shared.details  # the shared error is left as it was
