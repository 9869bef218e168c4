"""How the ``hubbub`` command ends on an ordinary failure: one line on standard error,
``hubbub: …``, and an exit code that says which kind of failure it is (README.md, "Exit
codes"). A traceback is for a bug, not for a service that is down.

* ``FAILED`` (1): the command could not do it: a database not migrated, a port taken,
  a request refused (``hubbub up``: anything that stops it while it starts);
* ``USAGE`` (2): wrong arguments or settings (argparse's own code), a revision that
  does not exist;
* ``UNAVAILABLE`` (69, sysexits' ``EX_UNAVAILABLE``): a service it needs — PostgreSQL,
  NATS — cannot be reached or refuses it (its credentials, a database that does not
  exist), or NATS closed the connection for good (``hubbub.natsconn``);
* ``STOPPED`` (130): stopped by Ctrl-C or, for ``hubbub up``, SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import sys
import threading

from cli.admin.system import redact
from hubbub.config import ConfigError
from hubbub.natsconn import NATS_CLOSED_EXIT, NatsUnavailable, describe_error

FAILED = 1
USAGE = 2
UNAVAILABLE = NATS_CLOSED_EXIT
STOPPED = 130

# PostgreSQL's answers (SQLSTATE) that say it will not let this connection in.
_REFUSED_CLASSES = ("28",)  # invalid authorization: no such user, a wrong password
_NO_DATABASE = "3D000"
_NO_TABLE = "42P01"  # a relation is not there: not migrated, or a bug (_not_migrated)
_CHECK_S = 10  # how long the migration check may take, its connect bounded at 3 s
_LISTEN_ERRORS = (errno.EADDRINUSE, errno.EADDRNOTAVAIL)


class Failure(Exception):
    """A command's failure as the operator sees it: ``message`` and the exit ``code``."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def explain(
    exc: BaseException, *, database_url: str | None = None, nats_url: str | None = None
) -> Failure | None:
    """``exc`` as an ordinary failure, naming the service (its URL without secrets), or
    None when it is not one (a bug: its traceback is worth seeing)."""
    if isinstance(exc, Failure):
        return exc
    if isinstance(exc, ConfigError):
        return Failure(str(exc), USAGE)
    if isinstance(exc, NatsUnavailable):
        return Failure(f"NATS at {_shown(nats_url)} is not reachable: {exc}", UNAVAILABLE)
    # Only a command that has loaded alembic (or asyncpg) can fail with its errors.
    if "alembic" in sys.modules:
        from alembic.util import CommandError

        if isinstance(exc, CommandError):  # e.g. a --revision that does not exist
            return Failure(str(exc), USAGE)
    if "asyncpg" in sys.modules and (failure := _postgres(exc, database_url)) is not None:
        return failure
    if isinstance(exc, OSError) and exc.errno in _LISTEN_ERRORS:
        return Failure(f"cannot listen: {exc}", FAILED)
    return None


def _postgres(exc: BaseException, database_url: str | None) -> Failure | None:
    from handlers.db import postgres_outage
    from hubbub.dependencies import causes

    where = f"PostgreSQL at {_shown(database_url)}"
    if postgres_outage(exc) is not None:
        return Failure(f"{where} is not reachable: {_why(exc)}", UNAVAILABLE)
    for cause in causes(exc):
        state = getattr(cause, "sqlstate", None)
        if not isinstance(state, str):
            continue
        if state == _NO_DATABASE or state.startswith(_REFUSED_CLASSES):
            return Failure(f"{where} refuses the connection: {cause}", UNAVAILABLE)
        if state == _NO_TABLE and _not_migrated(database_url):
            return Failure(
                f"the database at {_shown(database_url)} is not migrated ({cause}): "
                "run `hubbub migrate`",
                FAILED,
            )
    return None


def _not_migrated(database_url: str | None) -> bool:
    """Is the database behind Hubbub's migrations: no ``alembic_version`` table, or a
    revision that is not the newest? Only then is a missing table the operator's to fix
    (``hubbub migrate``); in a migrated database it is a bug, and its traceback is shown.
    False when it cannot be told.

    Asked on a thread of its own, with an event loop of its own: the caller's may run."""
    if not database_url:
        return False
    from alembic.script import ScriptDirectory

    from hubbub.config import normalize_database_url
    from migrations import alembic_config

    url = normalize_database_url(database_url)
    heads = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    found: list[set[str]] = []

    def ask() -> None:
        with contextlib.suppress(Exception):  # not told: the error is shown as it is
            found.append(asyncio.run(_revisions(url)))

    thread = threading.Thread(target=ask, name="migration-check", daemon=True)
    thread.start()
    thread.join(_CHECK_S)
    return bool(found) and found[0] != heads


async def _revisions(url: str) -> set[str]:
    """The revisions the database is at; none when it has no ``alembic_version``."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, connect_args={"timeout": 3})
    try:
        async with engine.connect() as conn:
            if not await conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL")):
                return set()
            rows = await conn.scalars(text("SELECT version_num FROM alembic_version"))
            return set(rows.all())
    finally:
        await engine.dispose()


def _why(exc: BaseException) -> str:
    """The driver's own error under SQLAlchemy's wrapping, as one line."""
    orig = getattr(exc, "orig", None)
    return describe_error(orig if isinstance(orig, BaseException) else exc)


def _shown(url: str | None) -> str:
    return redact(url) if url else "(not set)"
