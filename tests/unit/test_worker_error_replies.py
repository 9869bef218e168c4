"""A worker's error reply names the request it answers, also when one error answers many
(the refusals of the jobs still queued at a drain's deadline share one), and fits in a
NATS message."""

from __future__ import annotations

import logging
from typing import Any, cast

import orjson
import pytest
from nats.errors import MaxPayloadError

from handlers.registry import Registry
from hubbub.config import Settings
from hubbub.contracts.errors import NOT_STARTED, Unavailable, ValidationFailed
from workers.service import WorkerService


class Publisher:
    """Refuses what is over ``max_payload`` (headers and payload together, as the
    server counts them), as nats-py and the server do."""

    max_payload = 4096

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def publish(self, subject: str, body: bytes, headers: dict[str, str]) -> None:
        header_bytes = sum(len(k) + len(v) + 4 for k, v in headers.items()) + 12
        if len(body) + header_bytes > self.max_payload:
            raise MaxPayloadError
        self.sent.append(orjson.loads(body))


def worker_with(nc: Publisher) -> WorkerService:
    """A worker service that takes no requests: only its error replies are used."""
    settings = Settings(_env_file=None, secret_key="k" * 32)  # type: ignore[call-arg]
    return WorkerService(
        settings=settings,
        registry=Registry(),
        nc=cast(Any, nc),
        sessions=cast(Any, None),
        redis=cast(Any, None),
    )


async def test_one_error_answering_many_jobs_names_each_job_s_request() -> None:
    nc = Publisher()
    worker = worker_with(nc)
    shared = Unavailable("the worker is shutting down; retry", reason=NOT_STARTED)

    for request_id in ("req-a", "req-b", "req-c"):
        await worker._reply_error(b"_INBOX.r", shared, request_id)

    assert [body["details"]["request_id"] for body in nc.sent] == ["req-a", "req-b", "req-c"]
    assert {body["details"]["reason"] for body in nc.sent} == {NOT_STARTED}
    assert "request_id" not in shared.details  # the shared error is left as it was


async def test_an_error_too_long_for_nats_keeps_its_code_and_message_not_its_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A validation's list of errors can outgrow a message (a request from a client
    that is no hub: hubs validate first); the caller still hears what failed, and the
    log says the details were dropped — not that a reply was answered too_large."""
    nc = Publisher()
    worker = worker_with(nc)
    errors = [{"loc": ["params", f"f{n}"], "msg": "extra", "type": "extra"} for n in range(200)]
    failed = ValidationFailed("validation failed", errors=errors)

    with caplog.at_level(logging.INFO, logger="workers.service"):
        await worker._reply_error(b"_INBOX.r", failed, "req-v")

    assert nc.sent == [
        {
            "code": "validation_failed",
            "message": "validation failed",
            "status": 422,
            "details": {"request_id": "req-v"},
        }
    ]
    [line] = [r for r in caplog.records if r.name == "workers.service"]
    assert line.getMessage().startswith("error details dropped: too long (a validation_failed")
    assert "too_large" not in line.getMessage()
    assert worker.refusals.too_large == {}  # no answer was too_large
