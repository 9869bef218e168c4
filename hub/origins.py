"""Which browser origins may act on this hub: open a socket (hub/ws/endpoint.py) and
use the session cookie (hub/session_cookie.py). Both ask the same question.

An ``Origin`` is allowed when it is one of ``HUBBUB_CORS_ORIGINS``, the origin of
``HUBBUB_PUBLIC_URL`` (where browsers reach the hub through a proxy that may not pass
their ``Host`` on), or the request's own: the host and port of its ``Host``. The scheme
is not compared (a TLS proxy in front hides it), and a ``Host`` without a port matches
an origin on port 80 or 443.
"""

from __future__ import annotations

import functools

from aiohttp import web
from yarl import URL

from hub.state import SETTINGS
from hubbub.config import Settings


def origin_allowed(request: web.Request, origin: str) -> bool:
    return origin_allowed_at(request.app[SETTINGS], request.host, origin)


def origin_allowed_at(settings: Settings, host: str, origin: str) -> bool:
    """``origin_allowed`` for a request whose ``Host`` (or, lacking one, the address it
    came to) is ``host``."""
    if origin in settings.cors_origins:
        return True
    try:
        url = _url(origin)
        url.origin()  # ValueError unless absolute: "null", say
    except ValueError:
        return False
    if settings.public_url and _same_origin(url, _url(settings.public_url)):
        return True
    try:
        own = _url(f"http://{host}")
    except ValueError:
        return False
    if url.host is None or url.host != own.host:
        return False
    return url.port == own.port or (own.explicit_port is None and url.port in (80, 443))


def _same_origin(a: URL, b: URL) -> bool:
    """Scheme, host and port alike; a default port written out or left out is the same
    (``https://app.example:443`` is ``https://app.example``)."""
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


@functools.lru_cache(maxsize=256)
def _url(text: str) -> URL:
    """``URL(text)``, parsed once per text: a browser's every socket and cookie request
    asks about the same few origins and hosts. (A text that does not parse is not kept.)"""
    return URL(text)
