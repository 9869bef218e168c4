"""Login latency through the real hub: N logins, then p50 / p99.

A hub and a worker run as their own processes (``hubbub serve``, ``hubbub worker``), as
in production, on a fresh database; the client logs one user in N times over HTTP and
measures each request end to end (hub → NATS → worker → PostgreSQL + argon2id → back).
The argon2 parameters are the settings' defaults unless given. Rate limits are lifted
for the run (30 successful logins an hour to one account would otherwise stop it at
once), and so is the cap on one user's live sessions (past it, each login would also end
the oldest session).

    .venv/bin/python bench/login.py                      # defaults, 200 logins
    .venv/bin/python bench/login.py -n 500 --concurrency 4
    .venv/bin/python bench/login.py --memory-kib 19456 --time-cost 2

Uses DATABASE_URL / NATS_URL / REDIS_URL when set (a throwaway database is created on
that server and dropped after), else starts embedded servers in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.stats import percentile  # noqa: E402
from cli.embedded import EmbeddedNats, EmbeddedPostgres, EmbeddedRedis  # noqa: E402
from cli.embedded.process import die_with_parent  # noqa: E402
from hubbub.config import Settings, normalize_database_url  # noqa: E402
from tests.support.http import wait_until_200  # noqa: E402
from tests.support.ports import quiet_port  # noqa: E402

PASSWORD = "bench-password-not-common-42"  # noqa: S105 - a throwaway account


@contextlib.contextmanager
def services(base: Path) -> Iterator[dict[str, str]]:
    started: list[EmbeddedPostgres | EmbeddedNats | EmbeddedRedis] = []
    try:
        urls = {}
        for var, make in (
            ("DATABASE_URL", lambda: EmbeddedPostgres(base / "pg", durable=False)),
            ("NATS_URL", lambda: EmbeddedNats(base / "nats")),
            ("REDIS_URL", lambda: EmbeddedRedis(base / "redis")),
        ):
            if os.environ.get(var):
                urls[var] = os.environ[var]
            else:
                server = make()
                started.append(server)
                urls[var] = server.start()
        yield urls
    finally:
        for server in reversed(started):
            server.stop()


def with_database(url: str, name: str) -> str:
    base, _, tail = url.rpartition("/")
    query = "?" + tail.partition("?")[2] if "?" in tail else ""
    return f"{base}/{name}{query}"


async def create_database(server_url: str, name: str) -> str:
    dsn = normalize_database_url(server_url).replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(normalize_database_url(server_url), name)


async def drop_database(server_url: str, name: str) -> None:
    dsn = normalize_database_url(server_url).replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cli.main", *argv],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            preexec_fn=die_with_parent(),
            start_new_session=True,
        )


async def run_logins(base_url: str, email: str, n: int, concurrency: int) -> list[float]:
    timings: list[float] = []
    body = {"email": email, "password": PASSWORD}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            while True:
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                start = time.perf_counter()
                async with session.post(f"{base_url}/api/v1/auth/login", json=body) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"login failed: {response.status}")
                timings.append((time.perf_counter() - start) * 1000)

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return timings


async def main() -> None:
    defaults = Settings(_env_file=None)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="logins to time (default 200)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed logins first")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--memory-kib", type=int, default=defaults.argon2_memory_kib)
    parser.add_argument("--time-cost", type=int, default=defaults.argon2_time_cost)
    parser.add_argument("--parallelism", type=int, default=defaults.argon2_parallelism)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hubbub-bench-") as tmp, services(Path(tmp)) as urls:
        db_name = f"hubbub_bench_{secrets.token_hex(4)}"
        database_url = await create_database(urls["DATABASE_URL"], db_name)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            port = quiet_port(1)
            env = {
                **os.environ,
                **urls,
                "DATABASE_URL": database_url,
                "HUBBUB_SECRET_KEY": secrets.token_urlsafe(48),
                "HUBBUB_NAMESPACE": f"bench{secrets.token_hex(3)}",
                "HUBBUB_STATE_DIR": str(Path(tmp) / "state"),
                "HUBBUB_ARGON2_MEMORY_KIB": str(args.memory_kib),
                "HUBBUB_ARGON2_TIME_COST": str(args.time_cost),
                "HUBBUB_ARGON2_PARALLELISM": str(args.parallelism),
                "HUBBUB_RATE_LOGIN_IP": "1000000/60",
                "HUBBUB_RATE_LOGIN_ACCOUNT": "1000000/60",
                "HUBBUB_RATE_LOGIN_SUCCESS_IP": "1000000/60",
                "HUBBUB_RATE_LOGIN_SUCCESS_ACCOUNT": "1000000/60",
                # Every login is a session of its own: none ended to make room for it.
                "HUBBUB_MAX_SESSIONS_PER_USER": "1000000",
                "HUBBUB_ACCESS_LOG": "false",
                "HUBBUB_LOG_LEVEL": "WARNING",
            }
            migrate = subprocess.run(
                [sys.executable, "-m", "cli.main", "migrate"],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
            if migrate.returncode:
                raise RuntimeError(migrate.stderr)
            email = "bench@example.com"
            create = subprocess.run(
                [sys.executable, "-m", "cli.main", "user", "create", email, "--password-stdin"],
                env=env,
                cwd=ROOT,
                input=PASSWORD + "\n",
                capture_output=True,
                text=True,
                check=False,
            )
            if create.returncode:
                raise RuntimeError(create.stderr)
            procs.append(spawn(["worker"], env, Path(tmp) / "worker.log"))
            procs.append(spawn(["serve", "--port", str(port)], env, Path(tmp) / "hub.log"))
            base_url = f"http://127.0.0.1:{port}"
            await wait_until_200(f"{base_url}/api/v1/ready", processes=procs, what="the hub ready")
            await run_logins(base_url, email, args.warmup, 1)
            started = time.perf_counter()
            timings = await run_logins(base_url, email, args.n, args.concurrency)
            elapsed = time.perf_counter() - started
        finally:
            for proc in procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=15)
            await drop_database(urls["DATABASE_URL"], db_name)

    print(
        f"argon2id m={args.memory_kib} KiB t={args.time_cost} p={args.parallelism} | "
        f"{args.n} logins, concurrency {args.concurrency}, {os.cpu_count()} CPUs"
    )
    ordered = sorted(timings)
    print(
        f"p50 {percentile(ordered, 50):.1f} ms  p99 {percentile(ordered, 99):.1f} ms  "
        f"mean {statistics.fmean(timings):.1f} ms  max {max(timings):.1f} ms  "
        f"throughput {args.n / elapsed:.1f} logins/s"
    )


if __name__ == "__main__":
    asyncio.run(main())
