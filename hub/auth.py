"""Who is calling a REST route: ``Authorization: Bearer <access JWT>`` → the caller.

The token is verified by ``hub.calls.verify`` — the same function the WebSocket
``connect`` and ``refresh`` frames use: locally (signature, algorithm, ``iss``/``aud``,
expiry — ``hubbub.tokens``), then against the in-memory deny-list of revoked sessions
and deactivated users (``hub/revocations.py``). No database, no network: the worker
handlers re-check in the database what must be current (an admin's role, say). Whether
that caller may call an operation is decided in ``hub/calls.py`` too.

* A REST request with no ``Authorization`` header is anonymous; with a valid token it
  is that user. A bad token is ``unauthorized`` (``details.reason`` says why) — except
  for ``public`` operations, which treat it as no token (``auth.logout`` uses the
  session a valid one names).
"""

from __future__ import annotations

from aiohttp import web

from hub.calls import caller_of, verify
from hub.state import ACCESS_TOKENS, CLIENT_IP, REVOCATIONS
from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.errors import Unauthorized
from hubbub.contracts.operations import Access, Operation


def bearer_token(request: web.Request) -> str | None:
    return bearer_token_of(request.headers.get("Authorization"))


def bearer_token_of(header: str | None) -> str | None:
    """The token of an ``Authorization`` header; None without one."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send the access token as 'Authorization: Bearer <token>'")
    return token.strip()


def caller_from_token(app: web.Application, token: str, ip: str | None) -> Caller:
    return caller_of(verify(app[ACCESS_TOKENS], app[REVOCATIONS], token), ip)


async def authenticate(request: web.Request, op: Operation) -> Caller:
    """The caller of a REST request for ``op`` (access is checked by ``hub/calls.py``)."""
    ip = request.app[CLIENT_IP].of(request)
    if op.access is Access.PUBLIC:
        try:
            token = bearer_token(request)
            if token is not None:
                return caller_from_token(request.app, token, ip)
        except Unauthorized:
            pass
        return Caller(kind=CallerKind.ANONYMOUS, ip=ip)
    token = bearer_token(request)
    if token is None:
        return Caller(kind=CallerKind.ANONYMOUS, ip=ip)
    return caller_from_token(request.app, token, ip)
