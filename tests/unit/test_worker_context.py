"""The worker builds each handler's Context positionally (cheaper): every field lands."""

from __future__ import annotations

from typing import Any, cast

from nats.aio.msg import Msg

from handlers.context import Context
from handlers.registry import Registry
from hubbub.config import load_settings
from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.operations import Access, Empty, Http, NoParams, Operation
from workers.service import Request, WorkerService

WRITE = Operation("test.write", NoParams, Empty, Access.PUBLIC)
READ = Operation("test.read", NoParams, Empty, Access.PUBLIC, http=Http("GET", "/t"))


async def _handler(ctx: Context, params: Any) -> Any:
    return Empty()


def test_context_fields() -> None:
    writes, reads = object(), object()
    registry = Registry()
    registry.handler(WRITE)(_handler)
    registry.handler(READ)(_handler)
    svc = WorkerService(
        settings=load_settings(namespace="t"),
        registry=registry,
        nc=cast(Any, None),
        sessions=cast(Any, writes),
        read_sessions=cast(Any, reads),
        redis=cast(Any, object()),
    )
    caller = Caller(kind=CallerKind.USER, user_id="u1")
    msg = Msg(_client=cast(Any, None), subject="t.svc.test.write", reply="r", data=b"{}")
    for op, sessions in ((WRITE, writes), (READ, reads)):
        route = svc._route(op.name)
        assert route is not None
        job = Request(svc, msg, route, NoParams(), caller, "rid", "idem", 12.5)
        ctx = svc.context(job)
        assert ctx.caller is caller
        assert ctx.request_id == "rid"
        assert ctx.settings is svc.settings
        assert ctx.redis is svc.redis
        assert ctx.keys is svc.keys
        assert ctx.subjects is svc.subjects
        assert ctx.sessions is sessions
        assert ctx.idempotency_key == "idem"
        assert ctx.deadline == 12.5
        assert ctx.emitted == []
        assert ctx.resources is svc.resources
        assert ctx.publish == svc._publish
        assert not ctx.has_session
        assert not ctx.has_pending_commit
        ctx.after_commit(_noop)
        assert ctx.has_pending_commit
    assert svc.context(job).emitted is not svc.context(job).emitted  # one list each


async def _noop() -> None:
    return None
