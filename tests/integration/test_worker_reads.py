"""The worker gives read-only operations its read pool (``Context.read_one`` outside
SQLAlchemy, no session) and writes their transaction; the pool closes with the drain."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from handlers.context import Context
from handlers.db import Query
from hubbub.bus import Bus
from hubbub.contracts.operations import Access, Http, NoParams, Operation
from tests.support.ops import EchoResult
from workers.app import RunningWorker

NOW = Query(select(func.now().label("now"), func.txid_current_if_assigned().label("txid")))


@pytest.mark.parametrize(("method", "pooled"), [("GET", True), ("POST", False)])
async def test_reads_of_a_read_only_operation_use_the_pool(
    worker: RunningWorker, bus: Bus, method: str, pooled: bool
) -> None:
    seen: list[tuple[bool, bool]] = []
    op = Operation(f"test.read_{method.lower()}", NoParams, EchoResult, Access.PUBLIC,
                   Http(method, "/t"))  # fmt: skip

    async def probe(ctx: Context, params: NoParams) -> EchoResult:
        row = await ctx.read_one(NOW)
        assert row is not None
        seen.append((ctx.reads is not None, ctx.has_session))
        return EchoResult(key="k", seq=0, payload={})

    worker.service.registry.handler(op)(probe)
    await bus.request(op, {}, caller=None)
    # A read-only operation reads on the pool without a session; any other in its
    # transaction (a session, committed by the runtime).
    assert seen == [(pooled, not pooled)]
    pool = worker.service.read_pool
    assert pool is not None
    assert (pool.opened >= 1) is pooled


async def test_the_drain_closes_the_read_pool(worker: RunningWorker, bus: Bus) -> None:
    op = Operation("test.read_then_drain", NoParams, EchoResult, Access.PUBLIC, Http("GET", "/t"))

    async def probe(ctx: Context, params: NoParams) -> EchoResult:
        await ctx.read_one(NOW)
        return EchoResult(key="k", seq=0, payload={})

    worker.service.registry.handler(op)(probe)
    await bus.request(op, {}, caller=None)
    pool = worker.service.read_pool
    assert pool is not None
    assert pool.opened == 1
    await worker.service.drain(5)
    assert pool.opened == 0
