"""The built frontend (a Next.js static export) on the hub's own origin.

Same origin as ``/api/v1`` and ``/ws``, so the refresh cookie and the socket need no
CORS. Path rules (as the frontend's ``scripts/serve-static.mjs``): ``/x/`` serves
``x/index.html``; ``/x`` where ``x/`` is a folder redirects (308) to ``/x/``; a file
serves itself; anything else is ``404.html`` with status 404. ``/_next/static/`` is
content-hashed, so it is cached for a year; everything else is revalidated.

Compression: the frontend's build writes ``x.br`` and ``x.gz`` beside each text file
(``frontend/scripts/compress-static.mjs``); aiohttp's ``FileResponse`` sends one of them
(brotli first) with ``Content-Encoding`` to a client whose ``Accept-Encoding`` names it,
and the file itself to any other. Every answer for a file that has such copies carries
``Vary: Accept-Encoding``, so a cache keeps the versions apart. Nothing is compressed
per request.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

# Next's export inlines its boot scripts and styles: hence 'unsafe-inline' for both.
APP_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self' ws: wss:; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
)
IMMUTABLE = "public, max-age=31536000, immutable"
PRECOMPRESSED = (".br", ".gz")  # the copies aiohttp's FileResponse looks for, in its order


class StaticSite:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _resolve(self, path: str) -> Path | None:
        if "\x00" in path:
            return None  # no file has a NUL in its name (and the OS call would raise)
        target = (self.root / path.lstrip("/")).resolve()
        if target != self.root and self.root not in target.parents:
            return None  # ../ escapes
        return target

    def _file(self, path: Path, status: int = 200) -> web.FileResponse:
        response = web.FileResponse(path, status=status)
        kind, _ = mimetypes.guess_type(path.name)
        if kind is not None:
            response.content_type = kind
        immutable = "/_next/static/" in path.as_posix()
        response.headers["Cache-Control"] = IMMUTABLE if immutable else "no-cache"
        if path.suffix == ".html":
            response.headers["Content-Security-Policy"] = APP_CSP
        if any(_is_file(path.with_name(path.name + ext)) for ext in PRECOMPRESSED):
            response.headers["Vary"] = "Accept-Encoding"
        return response

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info.get("tail", "")
        if path == "ws" or path.startswith("api/"):
            raise web.HTTPNotFound()  # the API's own 404 (problem details), never HTML
        target = self._resolve(path)
        if target is None:
            raise web.HTTPNotFound()
        if _is_dir(target):
            if path and not path.endswith("/"):
                raise _redirect(self._folder_location(target, request))
            index = target / "index.html"
            if _is_file(index):
                return self._file(index)
        elif _is_file(target):
            return self._file(target)
        missing = self.root / "404.html"
        if missing.is_file():
            return self._file(missing, status=404)
        raise web.HTTPNotFound()

    def _folder_location(self, folder: Path, request: web.Request) -> str:
        """``/x/`` for the folder ``x`` a path resolved to, with the request's query as
        it came (decoded, an escaped ``#`` or ``&`` would change its meaning).

        Built from the folder, not from the request's path: a path like
        ``//evil.com%2f..`` resolves to the site's root, and echoing it would send the
        browser to another host (``Location: //evil.com/``).
        """
        relative = folder.relative_to(self.root).as_posix()
        location = "/" if relative == "." else f"/{quote(relative)}/"
        _, _, query = request.raw_path.partition("?")
        return f"{location}?{query}" if query else location


def _redirect(location: str) -> web.HTTPPermanentRedirect:
    """A 308 to ``location`` exactly: aiohttp's own parses and re-serializes it, which
    decodes escapes such as ``%2F`` in the query."""
    redirect = web.HTTPPermanentRedirect(location=location)
    redirect.headers["Location"] = location
    return redirect


def _is_dir(path: Path) -> bool:
    """Whether ``path`` is a folder; False for a name the OS refuses to look up (one too
    long for the file system, say)."""
    try:
        return path.is_dir()
    except OSError:
        return False


def _is_file(path: Path) -> bool:
    """``_is_dir`` for files."""
    try:
        return path.is_file()
    except OSError:
        return False


def add_static_routes(app: web.Application, root: Path) -> None:
    site = StaticSite(root)
    app.router.add_get("/{tail:.*}", site.handle)
