"""Running one handler as one unit of work: session, idempotency, commit, outbox kick.

A handler's writes, its idempotency record and its outbox events commit together or not
at all; the reply is sent only after the commit, so a caller that hears "done" can rely
on it, and a caller that hears nothing may retry with the same idempotency key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from handlers import idempotency
from handlers.context import Context
from handlers.registry import Handler
from hubbub.contracts.envelope import Caller
from hubbub.contracts.operations import Operation


def caller_scope(caller: Caller) -> str:
    """Whose idempotency keys these are: keys never collide between callers."""
    if caller.user_id:
        return f"user:{caller.user_id}"
    if caller.service:
        return f"service:{caller.service}"
    return "anonymous"


async def run_handler(
    op: Operation,
    handler: Handler,
    ctx: Context,
    params: BaseModel,
    on_events: Callable[[], None] | None = None,
) -> bytes:
    """Run ``handler`` in a transaction and return its result JSON."""
    try:
        key = ctx.idempotency_key if op.mutating else None
        if key is not None:
            scope = caller_scope(ctx.caller)
            stored = await idempotency.claim(
                ctx.session,
                caller=scope,
                key=key,
                operation=op.name,
                fingerprint=idempotency.request_fingerprint(op.name, _dump(params)),
            )
            if stored is not None:
                return stored  # replay: the first response, nothing applied again
        result = await handler(ctx, params)
        # The adapter's serializer itself: ``TypeAdapter.dump_json`` only forwards to it.
        body = op.result_adapter.serializer.to_json(result, warnings=False)
        if key is not None:
            await idempotency.complete(ctx.session, caller=scope, key=key, response=body)
        if ctx.has_pending_commit:  # reads on the read pool have nothing to commit
            await ctx.commit()
    except BaseException:
        ctx.discard_after_commit()
        if ctx.has_session:
            # If the connection died with the failure (PostgreSQL went away) there is
            # nothing to roll back, and the caller must hear about the failure, not this.
            with contextlib.suppress(Exception):
                await ctx.session.rollback()
        raise
    finally:
        if ctx.has_session:
            await ctx.session.close()
    if ctx.emitted and on_events is not None:
        on_events()
    return body


def _dump(params: BaseModel) -> dict[str, Any]:
    return params.model_dump(mode="json")
