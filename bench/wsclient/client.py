"""One process worth of sockets: open them (bounded handshakes in flight), count what
they receive, close them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import time
from collections import Counter
from collections.abc import Sequence

import psutil

from bench.wsclient.model import NO_SCRIPT, ConnectReport, Script, Snapshot, WSTarget
from bench.wsclient.protocol import Stats, WSClientProtocol


def raise_nofile(want: int) -> int:
    """Raise RLIMIT_NOFILE to at least ``want`` if possible; return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    if hard != resource.RLIM_INFINITY and hard < want:
        with contextlib.suppress(ValueError, OSError):  # root may raise the hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        want = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


class LoadClient:
    """Sockets of one process, all sharing one :class:`Stats`."""

    def __init__(self, sample_every: int = 50, seed: int | None = None) -> None:
        self.stats = Stats(sample_every, seed)
        self.protos: list[WSClientProtocol] = []
        self._proc = psutil.Process()
        self._batch_s = 0.0
        self._batcher: asyncio.Handle | None = None

    def set_read_batch(self, seconds: float) -> None:
        """Coalesce reads: block the loop ``seconds`` between I/O polls (0: off).

        The process then never sleeps in epoll_wait, so a frame the server
        sends wakes nobody, and each poll finds frames accumulated over
        ``seconds`` on many sockets (several per socket at high rates): fewer
        wake-ups and read syscalls per frame, at up to ``seconds`` of added
        latency.
        """
        self._batch_s = max(0.0, seconds)
        if self._batch_s > 0 and self._batcher is None:
            self._batcher = asyncio.get_running_loop().call_soon(self._batch_tick)

    def _batch_tick(self) -> None:
        if self._batch_s <= 0:
            self._batcher = None
            return
        time.sleep(self._batch_s)  # deliberately blocking: see set_read_batch
        # Runs again after the loop's next I/O poll.
        self._batcher = asyncio.get_running_loop().call_soon(self._batch_tick)

    async def connect(
        self,
        target: WSTarget,
        n: int,
        scripts: Script | Sequence[Script] = NO_SCRIPT,
        concurrency: int = 200,
        timeout: float = 30.0,
    ) -> ConnectReport:
        """Open ``n`` sockets, at most ``concurrency`` handshakes in flight; wait until each is ready."""
        if not isinstance(scripts, Script) and len(scripts) != n:
            raise ValueError("need one script per socket")
        raise_nofile(n + len(self.protos) + 256)
        loop = asyncio.get_running_loop()
        rep = ConnectReport(requested=n)
        errors: Counter[str] = Counter()
        indices = iter(range(n))
        st = self.stats

        async def one(i: int) -> None:
            script = scripts if isinstance(scripts, Script) else scripts[i]
            fut: asyncio.Future[None] = loop.create_future()
            proto = WSClientProtocol(st, target, script, fut)
            t0 = time.perf_counter()
            try:
                async with asyncio.timeout(timeout):
                    await loop.create_connection(lambda: proto, target.host, target.port)
                    await fut
            except Exception as e:
                errors[f"{type(e).__name__}: {e}"[:160]] += 1
                if proto.transport is not None:
                    proto.transport.abort()
                return
            rep.times_s.append(time.perf_counter() - t0)
            self.protos.append(proto)

        async def worker() -> None:
            for i in indices:
                await one(i)

        t_start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, n)))))
        rep.elapsed_s = time.perf_counter() - t_start
        rep.ok = len(rep.times_s)
        rep.failed = n - rep.ok
        rep.errors = dict(errors)
        return rep

    def snapshot(self, take_samples: bool = True) -> Snapshot:
        st = self.stats
        samples = st.samples
        tms = os.times()
        if take_samples:
            st.samples = []
        return Snapshot(
            frames=st.frames,
            binary=st.binary,
            rx_bytes=st.rx_bytes,
            open=st.open,
            closed=st.closed,
            app_pings=st.app_pings,
            ws_pings=st.ws_pings,
            errors=dict(st.errors),
            close_codes=dict(st.close_codes),
            samples_ns=list(samples),
            cpu_s=tms.user + tms.system,
            cpu_sys_s=tms.system,
            rss=self._proc.memory_info().rss,
            procs=1,
        )

    async def close(self, linger: float = 0.5) -> None:
        for p in self.protos:
            p.close()
        self.protos.clear()
        await asyncio.sleep(linger)
