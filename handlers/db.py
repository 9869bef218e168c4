"""The database layer's foundations: declarative base, naming conventions, engine, the
read pool of read-only operations, and which failures mean that PostgreSQL is
unreachable."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from datetime import datetime
from typing import Any, Protocol

import asyncpg
import orjson
from sqlalchemy import DateTime, MetaData, Select, event, func
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from hubbub.dependencies import POSTGRES, Outage, causes, raised_in

CONNECT_TIMEOUT_S = 5  # asyncpg's default is 60: an unreachable host would hold requests

# Stable constraint names, so Alembic migrations can name what they drop.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True)}


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


def create_engine(
    url: str, *, pool_size: int = 10, max_overflow: int = 10, **kwargs: Any
) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        # No pre-ping: it costs a round trip on every checkout, i.e. every request. A
        # connection the server closed (a restart) is known to be closed without asking
        # and is replaced at checkout (``_discard_closed``); one that dies under a
        # statement fails it, and SQLAlchemy then invalidates the pool (is_disconnect).
        # Recycling bounds how old a connection gets.
        pool_recycle=1800,
        # A failed statement's error text leaves its parameters out: they are email
        # addresses, password hashes, tokens, and that text goes to logs and Sentry.
        hide_parameters=True,
        connect_args={
            "timeout": CONNECT_TIMEOUT_S,
            # A statement that runs this long is a bug or a lock pile-up: fail it.
            "server_settings": {"statement_timeout": "30000", "application_name": "hubbub"},
        },
        # JSON columns in and out with orjson, like every other JSON here. jsonb keeps
        # numbers as exact decimals: a float like 1e29 comes back as a 30-digit integer,
        # which the stdlib would turn into a Python int that orjson cannot write (the relay
        # would stall on it); orjson reads it back as the float it was.
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        **kwargs,
    )
    event.listen(engine.sync_engine.pool, "checkout", _discard_closed)
    return engine


def _discard_closed(
    dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
) -> None:
    """A pooled connection whose server went away (PostgreSQL restarted while it sat in
    the pool) is replaced before use instead of failing the request that drew it.

    asyncpg notices a closed socket by itself, so the check is a flag, not a round trip;
    ``DisconnectionError`` makes the pool drop the connection and draw another.
    """
    driver = record.driver_connection
    if driver is not None and driver.is_closed():
        raise sa_exc.DisconnectionError("the server closed this pooled connection")


# Raised by asyncpg when the server cannot be reached or is going away.
_PG_DOWN = (
    asyncpg.PostgresConnectionError,  # class 08: connection failure, does not exist …
    asyncpg.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.AdminShutdownError,  # 57P01: terminated by a shutdown
    asyncpg.CrashShutdownError,  # 57P02
)


_PROTOCOL_BUSY = "another operation"


class PoolTimeout(Exception):
    """No connection of a ``ReadPool`` came free in time, or none will: the pool is closed
    (a worker stopping while a job still runs). Either way the caller gets a 503."""


# It answers, but has no room: 503 all the same, not an outage.
_PG_SATURATED = (
    asyncpg.TooManyConnectionsError,  # 53300
    sa_exc.TimeoutError,  # the engine's own pool: no connection free in time
    PoolTimeout,  # the read pool's
)

# PostgreSQL ended the transaction to settle a conflict with another one: nothing of it
# applied, and the same request again will likely pass. Not an outage, nor quite a bug
# of the request's: a deadlock says two code paths take locks in different orders.
_PG_CONFLICT = (
    asyncpg.DeadlockDetectedError,  # 40P01
    asyncpg.SerializationError,  # 40001
)


def transaction_conflict(exc: BaseException) -> bool:
    """Whether ``exc``, whatever wraps it, is PostgreSQL ending a transaction to settle a
    conflict with another (``_PG_CONFLICT``)."""
    return any(isinstance(cause, _PG_CONFLICT) for cause in causes(exc))


def postgres_outage(exc: BaseException) -> Outage | None:
    """Whether ``exc`` means PostgreSQL is unreachable (or saturated), whatever wraps it:
    a refused or reset connect, a connection closed under a statement, a server shutting
    down, SQLAlchemy's disconnect errors."""
    for cause in causes(exc):
        if isinstance(cause, _PG_SATURATED):
            return Outage(POSTGRES, down=False)
        if isinstance(cause, _PG_DOWN):
            return Outage(POSTGRES)
        if isinstance(cause, sa_exc.DBAPIError) and cause.connection_invalidated:
            return Outage(POSTGRES)
        if isinstance(cause, sa_exc.DisconnectionError):  # the pool gave up replacing
            return Outage(POSTGRES)
        if isinstance(cause, asyncpg.InterfaceError) and "connection is closed" in str(cause):
            return Outage(POSTGRES)
        # A connection the server shut down under it can leave asyncpg's protocol in a
        # state the next statement cannot leave ("cannot switch to state …; another
        # operation is in progress"). Hubbub never runs two statements on one connection
        # at once (a connection belongs to one request), so this is the server going
        # away, seen from a pooled connection that did not know it yet.
        if isinstance(cause, asyncpg.InternalClientError) and _PROTOCOL_BUSY in str(cause):
            return Outage(POSTGRES)
        # Connecting: asyncpg raises the socket's own error (refused, reset, timed out,
        # name not found), unwrapped — only the traceback says who raised it.
        if isinstance(cause, OSError) and raised_in(cause, "asyncpg", "sqlalchemy"):
            return Outage(POSTGRES)
    return None


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under ``session``'s transaction, the transaction begun.

    Hot statements run on it directly: no SQLAlchemy compilation, execution context or
    result machinery (tens of µs a statement instead of hundreds). They run inside the
    session's transaction, which the session still commits or rolls back. SQLAlchemy's
    asyncpg adapter sends ``BEGIN`` only before its own first statement, so it is sent
    here if no statement has run yet; statements on a session bound to an autocommit
    engine run in autocommit, as the session's own would.
    """
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    adapted: Any = raw.dbapi_connection
    if adapted._transaction is None and adapted.isolation_level != "autocommit":
        await adapted._start_transaction()  # the adapter's own BEGIN, tracked by it
    driver: asyncpg.Connection = raw.driver_connection
    return driver


async def autocommit_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection ``session`` holds, with no transaction begun: each statement
    on it commits by itself. For a handler whose whole change is one statement (it saves
    the ``BEGIN`` and ``COMMIT`` round trips); the session's commit then has nothing to
    do. Nothing else may run in ``session`` before it."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    return driver


# --- reads without SQLAlchemy's execution machinery ---------------------------------------

_ASYNCPG = asyncpg_dialect()  # type: ignore[no-untyped-call]
# Options of SQLAlchemy's asyncpg dialect that its URL may carry; asyncpg.connect has none.
_DIALECT_ONLY = ("prepared_statement_cache_size", "prepared_statement_name_func")


def asyncpg_connect_args(url: str | URL, *, application_name: str = "hubbub") -> dict[str, Any]:
    """``asyncpg.connect``'s arguments for the database at ``url``, as the engine's pool
    connects (server, credentials, the URL's options), with hubbub's connect and statement
    timeouts: for connections of hubbub's own, outside the engine's pool."""
    _, args = _ASYNCPG.create_connect_args(make_url(url))  # type: ignore[no-untyped-call]
    for dialect_only in _DIALECT_ONLY:
        args.pop(dialect_only, None)
    return {
        **args,
        "timeout": CONNECT_TIMEOUT_S,
        "server_settings": {"statement_timeout": "30000", "application_name": application_name},
    }


class Row(Protocol):
    """A result row, by column name: asyncpg's ``Record`` or SQLAlchemy's ``RowMapping``."""

    def __getitem__(self, key: str, /) -> Any: ...


class Query:
    """A Core ``select`` compiled once into PostgreSQL's text (``$1``, ``$2``, ...).

    Its arguments are given positionally, in the order of ``names`` (the bind parameters'
    names). ``ReadPool`` runs the text on asyncpg, which prepares it once per connection
    (asyncpg's statement cache); inside a transaction, the session runs ``statement``.
    Columns come back as asyncpg decodes them: ``json`` columns as text.
    """

    __slots__ = ("names", "sql", "statement")

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        compiled = statement.compile(dialect=_ASYNCPG)
        self.statement = statement
        self.sql = compiled.string
        self.names = tuple(compiled.positiontup or ())

    def bind(self, args: tuple[Any, ...]) -> dict[str, Any]:
        """The arguments by name, for the session's ``execute``."""
        if len(args) != len(self.names):
            raise TypeError(f"this query takes {len(self.names)} arguments: {self.names}")
        return dict(zip(self.names, args, strict=True))


class ReadPool:
    """Connections for read-only operations, used with asyncpg alone.

    A read through an ``AsyncSession`` costs a worker ~0.5-1 ms of CPU in SQLAlchemy's
    session, ORM loading, execution context and pool events (greenlet switches
    included); the same statement on an asyncpg connection costs a few dozen µs. These
    connections are in autocommit (no ``BEGIN``/``COMMIT``: each statement sees what READ
    COMMITTED would show it) and keep asyncpg's cache of prepared statements.

    Up to ``size`` connections, opened on first need and kept. A caller waits at most
    ``acquire_timeout`` seconds for one (then ``PoolTimeout``: saturated, a 503). A
    connection that failed other than with a PostgreSQL error (a broken socket, a
    cancelled statement) is closed and replaced by the next caller; PostgreSQL going away
    shows up as asyncpg's own errors, which ``postgres_outage`` recognises.
    """

    def __init__(self, url: str, size: int, *, acquire_timeout: float = 30.0) -> None:
        self._connect_args = asyncpg_connect_args(url)
        self.size = size
        self.acquire_timeout = acquire_timeout
        self.opened = 0  # connections open or being opened
        self._idle: list[asyncpg.Connection] = []
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._closed = False

    async def fetchrow(self, query: Query, *args: Any) -> Row | None:
        conn = await self._acquire()
        try:
            row: Row | None = await conn.fetchrow(query.sql, *args)
        except BaseException as exc:
            self._release(conn, broken=not isinstance(exc, asyncpg.PostgresError))
            raise
        self._release(conn)
        return row

    async def fetch(self, query: Query, *args: Any) -> list[Row]:
        conn = await self._acquire()
        try:
            rows: list[Row] = await conn.fetch(query.sql, *args)
        except BaseException as exc:
            self._release(conn, broken=not isinstance(exc, asyncpg.PostgresError))
            raise
        self._release(conn)
        return rows

    async def _acquire(self) -> asyncpg.Connection:
        while True:
            if self._closed:
                raise PoolTimeout("the read pool is closed: the worker is stopping")
            while self._idle:
                conn = self._idle.pop()  # the most recently used: its caches are warm
                if not conn.is_closed():
                    return conn
                self.opened -= 1  # the server closed it while it sat here
            if self.opened < self.size:
                self.opened += 1
                try:
                    conn = await asyncpg.connect(**self._connect_args)
                except BaseException:
                    self.opened -= 1
                    self._wake(None)  # a waiter may try in its turn
                    raise
                return conn  # (if the pool closed meanwhile, releasing it closes it)
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout(self.acquire_timeout):
                    handed = await waiter
            except BaseException as exc:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    # Handed a connection (or the right to open one) just as we gave up.
                    handed = waiter.result()
                    if handed is not None:
                        self._release(handed)
                    else:
                        self._wake(None)
                else:
                    self._discard_waiter(waiter)
                if isinstance(exc, TimeoutError):
                    raise PoolTimeout("no database connection came free in time") from None
                raise
            if handed is not None:
                return handed
            # None: a connection was closed; loop to open one in its place.

    def _release(self, conn: asyncpg.Connection, *, broken: bool = False) -> None:
        if broken or self._closed or conn.is_closed():
            self.opened -= 1
            conn.terminate()
            self._wake(None)
            return
        if not self._wake(conn):
            self._idle.append(conn)

    def _wake(self, conn: asyncpg.Connection | None) -> bool:
        """Hand ``conn`` (or, with None, the right to open one) to the first waiter."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    def _discard_waiter(self, waiter: asyncio.Future[asyncpg.Connection | None]) -> None:
        with contextlib.suppress(ValueError):  # already handed something and removed
            self._waiters.remove(waiter)

    async def close(self) -> None:
        """Close the idle connections; those in use close when they are released."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            self.opened -= 1
            try:
                await conn.close(timeout=2)
            except Exception:
                conn.terminate()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(PoolTimeout("the read pool is closed: the worker is stopping"))
