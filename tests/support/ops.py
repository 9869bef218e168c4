"""Operations that exist only in tests, to drive the runtime through its cases."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import text

from handlers.context import Context
from handlers.registry import Registry
from handlers.resources import service as resources_service
from hubbub.contracts.api import default_catalog
from hubbub.contracts.api.resources import ResourceCreate, ResourcePublic
from hubbub.contracts.channels import Channel, ChannelKind
from hubbub.contracts.errors import Conflict
from hubbub.contracts.events import EventType
from hubbub.contracts.operations import Access, Catalog, Http, Operation

log = logging.getLogger("tests.ops")


class EchoParams(BaseModel):
    key: str = "k"
    seq: int = 0
    delay: float = Field(default=0.0, ge=0, le=30)
    payload: dict[str, Any] = Field(default_factory=dict)


class EchoResult(BaseModel):
    key: str
    seq: int
    payload: dict[str, Any]


class NoteData(BaseModel):
    note: str


# A test-only event type: the test operations emit it; the product catalog never does.
NOTE_ADDED = EventType("note.added", NoteData, (ChannelKind.WORKSPACE,), "a test note")


class EmitParams(BaseModel):
    workspace: str
    note: str
    fail_after_emit: bool = False


class EmitResult(BaseModel):
    event_id: str
    count: int


test_catalog = Catalog()
echo = test_catalog.add(
    Operation(
        "test.echo", EchoParams, EchoResult, Access.PUBLIC, Http("POST", "/test/echo"), key="key"
    )
)
echo_unkeyed = test_catalog.add(
    Operation("test.echo_unkeyed", EchoParams, EchoResult, Access.PUBLIC)
)
# ``echo`` declared a read: the hub may send it again while it is in flight (``echo``
# itself is a POST that may write, and is never sent twice).
lookup = test_catalog.add(
    Operation("test.lookup", EchoParams, EchoResult, Access.PUBLIC, key="key", read_only=True)
)
crash = test_catalog.add(
    Operation(
        "test.crash", EchoParams, EchoResult, Access.PUBLIC, Http("POST", "/test/crash"), key="key"
    )
)
# Two calls (seq 0 and 1, other keys) that lock two advisory locks in opposite orders,
# each waiting for the other to hold its first: PostgreSQL ends one of them.
crossing_locks = test_catalog.add(
    Operation("test.crossing_locks", EchoParams, EchoResult, Access.PUBLIC, key="key")
)
bad_reply = test_catalog.add(
    Operation(
        "test.bad_reply", EchoParams, EchoResult, Access.PUBLIC, Http("GET", "/test/bad-reply")
    )
)
slow = test_catalog.add(
    Operation(
        "test.slow",
        EchoParams,
        EchoResult,
        Access.PUBLIC,
        Http("POST", "/test/slow"),
        key="key",
        timeout=0.5,
    )
)
emit = test_catalog.add(
    Operation(
        "test.emit",
        EmitParams,
        EmitResult,
        Access.PUBLIC,
        Http("POST", "/test/emit"),
        mutating=True,
        key="workspace",
    )
)

# Internal, yet with an HTTP route: neither REST nor RPC may reach it (hub/calls.py).
internal = test_catalog.add(
    Operation(
        "test.internal", EchoParams, EchoResult, Access.INTERNAL, Http("POST", "/test/internal")
    )
)

# ``emit``, held in the middle (``held``): its transaction open, its idempotency key claimed.
held_emit = test_catalog.add(
    Operation("test.held_emit", EmitParams, EmitResult, Access.USER, mutating=True, key="workspace")
)

# The real resources.create, made to fail after it has written and journalled: its
# transaction rolls back, so there must be no row, no activity and no event.
create_then_fail = test_catalog.add(
    Operation(
        "test.create_then_fail",
        ResourceCreate,
        ResourcePublic,
        Access.USER,
        mutating=True,
        key="workspace_id",
    )
)


class Hold:
    """Where ``test.held_emit`` stops: after its idempotency key is claimed, inside its
    open transaction, until the test opens the hold. The tests run the worker in their
    own process and event loop, so they see who is held (``arrived``: the notes, in
    order) and go on from there; a hold nobody opens lets go after ``LIMIT_S`` (a test
    fails, it does not hang)."""

    LIMIT_S = 30.0

    def __init__(self) -> None:
        self.arrived: list[str] = []
        self._open = asyncio.Event()

    async def reached(self, note: str) -> None:
        self.arrived.append(note)
        await asyncio.wait_for(self._open.wait(), self.LIMIT_S)

    def open(self) -> None:
        self._open.set()


# Execution order per key, observed by the handlers (the tests read it).
executed: dict[str, list[int]] = {}
emit_calls: list[str] = []
hold = Hold()  # a new one for each test's worker (tests/conftest.py)
test_registry = Registry()


@test_registry.handler(echo)
@test_registry.handler(echo_unkeyed)
@test_registry.handler(lookup)
@test_registry.handler(internal)
@test_registry.handler(slow)
async def run_echo(ctx: Context, params: EchoParams) -> EchoResult:
    log.info("echo handler ran", extra={"seq": params.seq})
    if params.delay:
        await asyncio.sleep(params.delay)
    executed.setdefault(params.key, []).append(params.seq)
    return EchoResult(key=params.key, seq=params.seq, payload=params.payload)


@test_registry.handler(crash)
async def run_crash(ctx: Context, params: EchoParams) -> EchoResult:
    if params.seq % 2 == 0:
        raise RuntimeError("boom: a secret internal detail")
    return EchoResult(key=params.key, seq=params.seq, payload={})


CROSSING_LOCKS = (7_301, 7_302)
holding_first: set[int] = set()  # the seqs of crossing_locks that hold their first lock


@test_registry.handler(crossing_locks)
async def run_crossing_locks(ctx: Context, params: EchoParams) -> EchoResult:
    first, second = CROSSING_LOCKS if params.seq == 0 else reversed(CROSSING_LOCKS)
    await ctx.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": first})
    holding_first.add(params.seq)
    while len(holding_first) < 2:  # both hold their first lock: the second ones cross
        await asyncio.sleep(0.01)
    await ctx.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": second})
    return EchoResult(key=params.key, seq=params.seq, payload={})


@test_registry.handler(bad_reply)
async def run_bad_reply(ctx: Context, params: EchoParams) -> Any:
    return {"key": 1, "unexpected": True}


@test_registry.handler(held_emit)
async def run_held_emit(ctx: Context, params: EmitParams) -> EmitResult:
    await hold.reached(params.note)
    return await run_emit(ctx, params)


@test_registry.handler(emit)
async def run_emit(ctx: Context, params: EmitParams) -> EmitResult:
    emit_calls.append(params.note)
    event = ctx.emit(Channel.workspace(params.workspace), NOTE_ADDED, {"note": params.note})
    if params.fail_after_emit:
        raise Conflict("changed my mind after emitting")
    return EmitResult(event_id=event.id, count=len(emit_calls))


@test_registry.handler(create_then_fail)
async def run_create_then_fail(ctx: Context, params: ResourceCreate) -> ResourcePublic:
    await resources_service.create(ctx, params)
    assert ctx.emitted, "the handler journalled its event"
    raise Conflict("changed my mind after creating")


def catalog_with_tests() -> Catalog:
    return default_catalog().extend(test_catalog)


def registry_with_tests() -> Registry:
    from handlers import default_registry

    return default_registry().extend(test_registry)
