"""The refresh token as a browser cookie: REST hooks on the ``auth.*`` operations.

Browsers should never hold the refresh token where scripts can read it. So when a
request carries ``X-Requested-With: hubbub`` (the SPA always sends it), the refresh
token of ``auth.login`` / ``auth.refresh`` goes into a cookie::

    Set-Cookie: hubbub_refresh=<token>; HttpOnly; Secure; SameSite=Strict;
                Path=/api/v1/auth; Max-Age=<refresh lifetime>

and leaves the JSON body; the access token stays in the body (the SPA keeps it in
memory). ``auth.refresh`` and ``auth.logout`` then take the token from the cookie — but
only from a request that has the header and, when it sends an ``Origin``, one this hub
allows (hub/origins.py: its own, ``HUBBUB_PUBLIC_URL``'s or one of
``HUBBUB_CORS_ORIGINS``). A page on another site cannot add that header
without a CORS preflight, which this hub grants only to allowed origins: that is the
CSRF guard, with ``SameSite=Strict`` as a second one. A cookie that arrives without the
header is refused (403), never used.

Without the header (REST clients) nothing changes: the body carries ``refresh_token``
both ways and no cookie is set. Logout (either kind) clears the cookie, also when it
fails (a stale cookie, an outage).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from hub.origins import origin_allowed
from hub.problems import echoable
from hub.rest import API_PREFIX
from hub.rest_hooks import BeforeHook, RestHooks
from hub.state import SETTINGS
from hubbub.contracts.errors import Forbidden, HubbubError, Unauthorized

COOKIE = "hubbub_refresh"
COOKIE_PATH = API_PREFIX + "/auth"
SPA_HEADER = "X-Requested-With"
SPA_HEADER_VALUE = "hubbub"


def from_spa(request: web.Request) -> bool:
    return request.headers.get(SPA_HEADER, "").lower() == SPA_HEADER_VALUE


def cookie_into_params(*, required: bool) -> BeforeHook:
    def hook(request: web.Request, params: dict[str, Any]) -> None:
        if params.get("refresh_token"):
            return  # the body wins: a REST client's explicit token
        cookie = request.cookies.get(COOKIE)
        if not from_spa(request):
            if cookie:
                raise Forbidden(
                    f"the session cookie is accepted only with '{SPA_HEADER}: "
                    f"{SPA_HEADER_VALUE}'; REST clients send refresh_token in the body"
                )
            return
        origin = request.headers.get("Origin")
        if origin is not None and not origin_allowed(request, origin):
            raise Forbidden("this origin may not use the session cookie", origin=echoable(origin))
        if cookie:
            params["refresh_token"] = cookie
        elif required:
            raise Unauthorized("no session cookie: sign in", reason="no_session")

    return hook


def set_cookie(request: web.Request, result: Any, response: web.Response) -> None:
    """Move the refresh token from the body into the cookie, for the SPA."""
    if not from_spa(request) or not getattr(result, "refresh_token", None):
        return
    assert isinstance(response.body, bytes)
    body = orjson.loads(response.body)
    body.pop("refresh_token", None)
    response.body = orjson.dumps(body)
    response.set_cookie(
        COOKIE,
        result.refresh_token,
        max_age=result.refresh_expires_in,
        path=COOKIE_PATH,
        secure=request.app[SETTINGS].cookie_secure,
        httponly=True,
        samesite="Strict",
    )


def clear_cookie(request: web.Request, result: Any, response: web.Response) -> None:
    if COOKIE in request.cookies:
        response.del_cookie(
            COOKIE,
            path=COOKIE_PATH,
            secure=request.app[SETTINGS].cookie_secure,
            httponly=True,
            samesite="Strict",
        )


def clear_dead_cookie(request: web.Request, error: HubbubError, response: web.Response) -> None:
    """A refresh refused for good (revoked, reused, expired) ends the browser's session:
    drop the cookie rather than have every page load present it again."""
    if isinstance(error, Unauthorized) and from_spa(request):
        clear_cookie(request, None, response)


def clear_cookie_of_failed_logout(
    request: web.Request, error: HubbubError, response: web.Response
) -> None:
    """The browser asked to sign out: whatever the answer (a stale cookie's 401, a 503),
    it keeps no cookie to present again."""
    if from_spa(request):
        clear_cookie(request, None, response)


def install(hooks: RestHooks) -> None:
    hooks.add_before("auth.refresh", cookie_into_params(required=True))
    hooks.add_before("auth.logout", cookie_into_params(required=False))
    for operation in ("auth.login", "auth.refresh"):
        hooks.add_after(operation, set_cookie)
    for operation in ("auth.logout", "auth.logout_all"):
        hooks.add_after(operation, clear_cookie)
    hooks.add_failed("auth.refresh", clear_dead_cookie)
    hooks.add_failed("auth.logout", clear_cookie_of_failed_logout)
