"""The worker builds each handler's Context positionally (cheaper): every field lands."""

from __future__ import annotations

import time
from typing import Any, cast

import orjson
from nats.aio.msg import Msg

from cli.runtime import load_settings
from handlers.context import Context
from handlers.registry import Registry
from hubbub.callers import CallerSigner
from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.operations import Access, Empty, Http, NoParams, Operation
from workers.service import WorkerService

WRITE = Operation("test.write", NoParams, Empty, Access.PUBLIC)
READ = Operation("test.read", NoParams, Empty, Access.PUBLIC, http=Http("GET", "/t"))


class RecordingNats:
    max_payload = 1024 * 1024

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    async def publish(self, subject: str, payload: bytes, headers: Any = None) -> None:
        self.published.append((subject, payload))


async def test_context_fields() -> None:
    seen: list[Context] = []

    async def handler(ctx: Context, params: Any) -> Any:
        seen.append(ctx)
        return Empty()

    registry = Registry()
    registry.handler(WRITE)(handler)
    registry.handler(READ)(handler)
    writes, reads = object(), object()
    nc = RecordingNats()
    svc = WorkerService(
        settings=load_settings(namespace="t"),
        registry=registry,
        nc=cast(Any, nc),
        sessions=cast(Any, writes),
        read_sessions=cast(Any, reads),
        redis=cast(Any, object()),
    )
    caller = Caller(kind=CallerKind.USER, user_id="u1")
    deadline_ms = int((time.time() + 60) * 1000)
    envelope = {
        "params": {},
        "caller": caller.model_dump(mode="json", exclude_none=True),
        "caller_sig": CallerSigner.from_settings(svc.settings)
        .sign(orjson.dumps(caller.model_dump(mode="json", exclude_none=True)), deadline_ms)
        .decode(),
        "deadline": deadline_ms,
        "request_id": "rid",
        "idempotency_key": "idem",
    }
    for op, sessions in ((WRITE, writes), (READ, reads)):
        msg = Msg(
            _client=cast(Any, None),
            subject=f"t.svc.{op.name}",
            reply=f"_INBOX.r.{op.name}",
            data=orjson.dumps(envelope),
        )
        await svc._on_message(msg)
        assert nc.published[-1] == (f"_INBOX.r.{op.name}", b"{}")  # the handler ran and replied
        ctx = seen[-1]
        assert ctx.caller == caller
        assert ctx.request_id == "rid"
        assert ctx.settings is svc.settings
        assert ctx.redis is svc.redis
        assert ctx.keys is svc.keys
        assert ctx.subjects is svc.subjects
        assert ctx.sessions is sessions
        assert ctx.idempotency_key == "idem"
        assert ctx.deadline == deadline_ms / 1000
        assert ctx.emitted == []
        assert ctx.resources is svc.resources
        assert ctx.publish == svc._publish
        assert ctx.reads is (svc.read_pool if op is READ else None)  # the read pool: reads only
        assert not ctx.has_session
        assert not ctx.has_pending_commit
        ctx.after_commit(_noop)
        assert ctx.has_pending_commit
    assert seen[0].emitted is not seen[1].emitted  # one list each


async def _noop() -> None:
    return None
