"""``hubbub migrate`` and ``hubbub check``: the database schema, the JetStream streams, and
whether PostgreSQL, NATS and Redis answer."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

from cli.admin import NATS_ATTEMPT_S, command_nats
from hubbub.config import ConfigError, Settings

# Schemes whose user info without a password is a token (``nats://TOKEN@host``).
_TOKEN_SCHEMES = frozenset({"nats", "tls", "ws", "wss"})


def redact(url: str) -> str:
    """The URL without its secrets, for messages: each of a comma-separated server list
    (NATS_URL) on its own; a password, and a NATS token, become ``***``."""
    return ",".join(_redact_one(part) for part in url.split(","))


def _redact_one(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket: show nothing of it but the scheme
        scheme = url.partition("://")[0] if "://" in url else ""
        return f"{scheme}://***" if scheme else "***"
    if "@" not in parts.netloc:
        return "***" if "@" in url else url  # user info where no URL parser looks
    userinfo, _, host = parts.netloc.rpartition("@")
    if ":" in userinfo:
        userinfo = userinfo.partition(":")[0] + ":***"
    elif parts.scheme in _TOKEN_SCHEMES:
        userinfo = "***"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


def without_user_info(url: str) -> str:
    """The URL with no user info at all (user, password, token), each of a comma-separated
    server list on its own: where to connect, for a client with credentials of its own."""
    return ",".join(_without_user_info(part.strip()) for part in url.split(","))


def _without_user_info(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return _redact_one(url)
    if "@" not in parts.netloc:
        return url if "@" not in url else _redact_one(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


async def migrate(settings: Settings, *, revision: str = "head", down: bool = False) -> int:
    import migrations

    if not settings.database_url:
        raise ConfigError(
            "DATABASE_URL is not set (hubbub up migrates its embedded database itself)"
        )
    if down:
        await migrations.downgrade(settings.database_url, revision)
        print(f"database downgraded to {revision}")
    else:
        await migrations.upgrade(settings.database_url, revision)
        print(f"database at {revision}")
    if settings.nats_url and not down:
        await ensure_nats_streams(settings)
        print("JetStream streams in place")
    return 0


async def ensure_nats_streams(settings: Settings) -> None:
    from hubbub.contracts.subjects import Subjects
    from hubbub.streams import ensure_streams, stream_replicas

    assert settings.nats_url
    nc = await command_nats(settings, "hubbub-migrate")
    try:
        await ensure_streams(
            nc.jetstream(),
            Subjects(settings.namespace),
            settings.policies(),
            replicas=stream_replicas(settings),
        )
    finally:
        await nc.close()


async def check_postgres(url: str) -> str:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, connect_args={"timeout": 3})
    try:
        async with engine.connect() as conn:
            version = await conn.scalar(text("SHOW server_version"))
            revision = await conn.scalar(
                text("SELECT version_num FROM alembic_version")
                if await conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
                else text("SELECT 'none (run hubbub migrate)'")
            )
        return f"PostgreSQL {version}, migration {revision}"
    finally:
        await engine.dispose()


async def check_nats(url: str, settings: Settings | None = None) -> str:
    """One try of each server (nats-py's fewest: two, 0.1 s apart), its errors kept for
    the message instead of logged with their tracebacks (nats-py's default); the last
    one is why NATS is not reachable. (``max_reconnect_attempts=0`` would be no limit.)"""
    import nats
    from nats.errors import NoServersError

    from hubbub.natsauth import ANONYMOUS, nats_auth
    from hubbub.natsconn import describe_error, nats_servers

    failures: list[Exception] = []

    async def keep(exc: Exception) -> None:
        failures.append(exc)

    auth = nats_auth(settings) if settings is not None else ANONYMOUS
    try:
        nc = await nats.connect(
            nats_servers(url),
            connect_timeout=NATS_ATTEMPT_S,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.1,  # seconds; floats work
            allow_reconnect=False,
            error_cb=keep,
            **auth.options(),
        )
    except NoServersError:
        raise RuntimeError(describe_error(failures[-1] if failures else None)) from None
    except Exception as exc:
        raise RuntimeError(describe_error(exc)) from None
    try:
        try:
            info = await nc.jetstream().account_info()
        except Exception as exc:
            raise RuntimeError(
                f"connected, but JetStream is not enabled ({exc}); start nats-server with -js"
            ) from None
        return f"NATS {nc.connected_server_version}, JetStream on ({info.streams} streams)"
    finally:
        await nc.close()


async def check_redis(url: str) -> str:
    from redis.asyncio import Redis

    redis = Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        info = await redis.info("server")
        return f"Redis {info.get('redis_version')}"
    finally:
        await redis.aclose()


async def check(settings: Settings) -> int:
    """Print one line per dependency; exit 1 if any is unreachable."""
    checks: list[tuple[str, str | None, Callable[[str], Awaitable[str]]]] = [
        ("PostgreSQL", settings.database_url, check_postgres),
        ("NATS", settings.nats_url, functools.partial(check_nats, settings=settings)),
        ("Redis", settings.redis_url, check_redis),
    ]
    failures = 0
    for name, url, probe in checks:
        env = {"PostgreSQL": "DATABASE_URL", "NATS": "NATS_URL", "Redis": "REDIS_URL"}[name]
        if not url:
            print(f"-  {name}: {env} not set (hubbub up starts an embedded one)")
            continue
        start = time.perf_counter()
        try:
            detail = await asyncio.wait_for(probe(url), 10)
            took = (time.perf_counter() - start) * 1000
            print(f"ok {name} at {redact(url)}: {detail} ({took:.0f} ms)")
        except Exception as exc:
            failures += 1
            reason = str(exc) or type(exc).__name__
            print(f"!! {name} at {redact(url)} is not reachable: {reason}")
    return 1 if failures else 0
