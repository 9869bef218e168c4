"""Who is calling: the caller of a REST request, checked against the operation's access.

``Authorization: Bearer <access JWT>`` is verified here, locally (signature, algorithm,
``iss``/``aud``, expiry — ``hubbub.tokens``), then checked against the in-memory
deny-list of revoked sessions and deactivated users (``hub/revocations.py``). No
database, no network: the worker handlers re-check in the database what must be
current (an admin's role, say).

* ``public``: anyone. A valid token makes the caller that user (``auth.logout`` uses
  the session it names); a missing or bad one leaves the caller anonymous.
* ``user``: a valid, unrevoked token. ``admin``: the same, with the admin role.
* ``service``: API keys come with the publish API; refused until then.
* ``internal``: never from outside.
"""

from __future__ import annotations

from aiohttp import web

from hub.state import ACCESS_TOKENS, CLIENT_IP, REVOCATIONS
from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.errors import Forbidden, Unauthorized
from hubbub.contracts.operations import Access, Operation


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send the access token as 'Authorization: Bearer <token>'")
    return token.strip()


def caller_from_token(app: web.Application, token: str, ip: str | None) -> Caller:
    """The user an access token names, if it verifies and is not revoked; else
    ``Unauthorized`` (``details.reason`` says why). No I/O: the WebSocket ``connect``
    and ``refresh`` frames use this too."""
    claims = app[ACCESS_TOKENS].verify(token)
    if app[REVOCATIONS].is_revoked(claims.sid, claims.sub):
        raise Unauthorized("this session has ended; sign in again", reason="revoked")
    return Caller(
        kind=CallerKind.USER,
        user_id=claims.sub,
        role=claims.role,
        session_id=claims.sid,
        ip=ip,
    )


async def authenticate(request: web.Request, op: Operation) -> Caller:
    if op.access is Access.INTERNAL:
        raise Forbidden("internal operation")
    ip = request.app[CLIENT_IP].of(request)
    if op.access is Access.PUBLIC:
        try:
            token = bearer_token(request)
            if token is not None:
                return caller_from_token(request.app, token, ip)
        except Unauthorized:
            pass
        return Caller(kind=CallerKind.ANONYMOUS, ip=ip)
    if op.access is Access.SERVICE:
        raise Unauthorized("this operation needs a service API key")
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("sign in first: send 'Authorization: Bearer <access token>'")
    caller = caller_from_token(request.app, token, ip)
    if op.access is Access.ADMIN and caller.role != "admin":
        raise Forbidden("only admins may do this")
    return caller
