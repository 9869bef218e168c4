"""Who is calling: the caller of a REST request, checked against the operation's access."""

from __future__ import annotations

from aiohttp import web

from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.errors import Forbidden, Unauthorized
from hubbub.contracts.operations import Access, Operation


async def authenticate(request: web.Request, op: Operation) -> Caller:
    if op.access is Access.PUBLIC:
        return Caller(kind=CallerKind.ANONYMOUS, ip=request.remote)
    if op.access is Access.INTERNAL:
        raise Forbidden("internal operation")
    raise Unauthorized("sign in first")
