"""Target adapters: what the benchmarks drive.

A benchmark never talks to a server directly; it goes through a
:class:`Target`, which knows how to start the server process(es), how a
socket connects and subscribes (a :class:`~bench.wsclient.Script` of frames
sent after the upgrade, and how many replies make it ready), and how to
publish one message.  The fan-out and idle-socket benchmarks are written
against this interface only: the Hubbub adapter (``bench/hubbub_target.py``) sits
next to :class:`BareTarget` (``--target bare``, ``--target hubbub`` or
``--target pkg.module:Class``).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import importlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from bench.wsclient import Script, WSTarget
from cli.embedded.process import die_with_parent

REPO_ROOT = Path(__file__).resolve().parent.parent


class Target(abc.ABC):
    """What a benchmark needs from a server under test.

    Life cycle: ``await start()`` -> sockets connect to :meth:`ws_target`
    with :meth:`socket_scripts` -> ``await await_sockets(n)`` -> any number of
    ``await publish(...)`` -> ``await stop()``.  All coroutines run on the
    benchmark's event loop.
    """

    name: str = "?"

    @abc.abstractmethod
    async def start(self) -> None:
        """Start the server process(es) and wait until they accept sockets."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop everything :meth:`start` started."""

    @abc.abstractmethod
    def ws_target(self) -> WSTarget:
        """Address, path, subprotocols and headers of the WebSocket endpoint."""

    @abc.abstractmethod
    def server_pids(self) -> list[int]:
        """Processes whose CPU time and RSS count as the server's (e.g. hub + NATS)."""

    def socket_scripts(self, n: int, channel: str | None) -> Script | Sequence[Script]:
        """Frames each of ``n`` sockets sends after the upgrade, and replies to await.

        ``channel`` None: only connect (e.g. authenticate); otherwise also
        subscribe to ``channel``.  One :class:`Script` for all sockets, or one
        per socket (e.g. a token per user).
        """
        return Script()

    async def await_sockets(self, n: int, timeout: float = 30.0) -> None:
        """Return once the server holds ``n`` sockets (as far as the target can tell).

        Targets whose subscribe reply means "subscribed" can keep this
        default, which just lets the server settle a moment.
        """
        await asyncio.sleep(0.2)

    def diagnostics(self) -> dict[str, Any]:
        """Target-specific figures gathered since the last call (reported per step)."""
        return {}

    @abc.abstractmethod
    async def publish(self, channel: str, data: bytes) -> int | None:
        """Publish one message whose application payload is ``data`` (a JSON object).

        ``data`` carries ``"t": <time.time_ns()>``; the frame the subscribers
        receive must contain it verbatim.  Return once the server accepted
        the publication, with the number of sockets it was sent to if the
        server says so (else None: the benchmark expects one frame per
        subscriber).  Raise on failure.
        """


# --------------------------------------------------------------------------
# Helpers for adapters


class ServerProcess:
    """A server started as ``python -m MODULE ...`` that prints ``PORT <n>`` once listening."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self._drain: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 20.0) -> int:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,
            cwd=str(REPO_ROOT),
            env={**os.environ, **(self.env or {})},
            start_new_session=True,
            preexec_fn=die_with_parent(),  # a killed benchmark leaves no server behind
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.argv}: no PORT line in {timeout}s")
            line = await asyncio.wait_for(self.proc.stdout.readline(), left)
            if not line:
                raise RuntimeError(f"{self.argv}: exited with {await self.proc.wait()}")
            if line.startswith(b"PORT "):
                self.port = int(line.split()[1])
                break
        self._drain = asyncio.create_task(self._drain_stdout())
        return self.port

    async def _drain_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while await self.proc.stdout.readline():
            pass

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def stop(self, timeout: float = 10.0) -> None:
        p = self.proc
        if p is None or p.returncode is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(p.wait(), timeout)
        except TimeoutError:
            p.kill()
            await p.wait()
        if self._drain is not None:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain


# --------------------------------------------------------------------------
# The bare aiohttp broadcast baseline


class BareTarget(Target):
    """``bench/baselines/bare_broadcast.py``: one set of sockets, ``POST /publish`` broadcasts.

    It has no channels: every socket gets every publication, whatever the
    ``channel`` argument.  A socket is ready as soon as it is upgraded; the
    server's ``/stats`` tells how many it holds.
    """

    name = "bare"

    def __init__(
        self,
        host: str = "127.0.0.1",
        backlog: str = "4096",
        max_inflight: str = "32",
        gc: str = "on",
    ) -> None:
        self.host = host
        self.name = "bare" if gc == "on" else "bare-gc-off"
        self.server = ServerProcess(
            [
                sys.executable,
                "-m",
                "bench.baselines.bare_broadcast",
                "--host",
                host,
                "--port",
                "0",
                "--backlog",
                backlog,
                "--gc",
                gc,
            ]
        )
        self.max_inflight = int(max_inflight)
        self._http: aiohttp.ClientSession | None = None
        self._loop_ms: list[float] = []

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.server.port}"

    async def start(self) -> None:
        await self.server.start()
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.max_inflight, force_close=False),
            timeout=aiohttp.ClientTimeout(total=60),
        )

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        await self.server.stop()

    def ws_target(self) -> WSTarget:
        return WSTarget(self.host, self.server.port, "/ws")

    def server_pids(self) -> list[int]:
        return [self.server.pid]

    async def stats(self) -> dict[str, Any]:
        assert self._http is not None
        async with self._http.get(self.base + "/stats") as r:
            r.raise_for_status()
            body: dict[str, Any] = await r.json()
            return body

    async def await_sockets(self, n: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            have = int((await self.stats())["sockets"])
            if have == n:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"server holds {have} sockets, expected {n}")
            await asyncio.sleep(0.05)

    async def publish(self, channel: str, data: bytes) -> int | None:
        assert self._http is not None
        async with self._http.post(self.base + "/publish", data=data) as r:
            r.raise_for_status()
            body = await r.json()
            self._loop_ms.append(float(body["loop_ms"]))
            return int(body["sent"])

    def diagnostics(self) -> dict[str, Any]:
        """Median and max wall time of the server's broadcast loop."""
        v = sorted(self._loop_ms)
        self._loop_ms = []
        if not v:
            return {}
        return {"loop_ms_p50": v[len(v) // 2], "loop_ms_max": v[-1]}


class RawTarget(BareTarget):
    """``bench/baselines/raw_upgrade.py``: upgrades by hand on a bare asyncio protocol, with
    aiohttp's frame reader and writer; sockets only (no broadcast). The floor an upgrade
    costs in Python, beside the bare aiohttp server's (``bench sockets --target bare
    --target raw``)."""

    name = "raw"

    def __init__(self, host: str = "127.0.0.1", backlog: str = "4096") -> None:
        super().__init__(host=host, backlog=backlog)
        self.name = "raw"
        self.server = ServerProcess(
            [
                sys.executable,
                "-m",
                "bench.baselines.raw_upgrade",
                "--host",
                host,
                "--port",
                "0",
                "--backlog",
                backlog,
            ]
        )

    async def publish(self, channel: str, data: bytes) -> int | None:
        raise NotImplementedError("the raw upgrade server holds sockets only: no broadcast")


TARGETS: dict[str, type[Target]] = {"bare": BareTarget, "raw": RawTarget}


def split_options(specs: Sequence[str], options: Sequence[str]) -> dict[str, list[str]]:
    """``--target-opt [SPEC@]KEY=VALUE``: without ``SPEC@`` an option goes to every target."""
    out: dict[str, list[str]] = {spec: [] for spec in specs}
    for o in options:
        spec, at, kv = o.partition("@")
        if not at:
            for v in out.values():
                v.append(o)
        elif spec in out:
            out[spec].append(kv)
        else:
            raise ValueError(f"--target-opt {o!r}: no target {spec!r}")
    return out


def ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline, rounded; None when either is missing or the baseline is 0."""
    if value is None or not baseline:
        return None
    return round(value / baseline, 3)


def make_target(spec: str, options: Sequence[str] = ()) -> Target:
    """``bare``, ``raw``, ``hubbub`` or ``package.module:Class``; ``options`` are
    ``key=value`` keyword arguments."""
    if spec == "hubbub":
        from bench.hubbub_target import HubbubTarget

        cls: type[Target] = HubbubTarget
    elif spec in TARGETS:
        cls = TARGETS[spec]
    elif ":" in spec:
        mod, _, attr = spec.partition(":")
        cls = getattr(importlib.import_module(mod), attr)
        if not (isinstance(cls, type) and issubclass(cls, Target)):
            raise TypeError(f"{spec} is not a Target subclass")
    else:
        raise ValueError(
            f"unknown target {spec!r}; known: {', '.join(TARGETS)}, hubbub or module:Class"
        )
    kwargs = dict(o.split("=", 1) for o in options)
    return cls(**kwargs)
