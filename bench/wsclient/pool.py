"""Sockets spread over worker processes (spawned; commands and results over pipes),
their counters summed in the parent."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

import uvloop

from bench.wsclient.client import LoadClient, raise_nofile
from bench.wsclient.model import NO_SCRIPT, ConnectReport, Script, Snapshot, WSTarget


def _worker_main(conn: Connection, sample_every: int, seed: int | None) -> None:
    raise_nofile(65536)
    uvloop.run(_worker_serve(conn, sample_every, seed))


async def _worker_serve(conn: Connection, sample_every: int, seed: int | None) -> None:
    client = LoadClient(sample_every, seed)
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple[int, str, tuple[Any, ...]] | None] = asyncio.Queue()

    def readable() -> None:
        try:
            while conn.poll():
                inbox.put_nowait(conn.recv())
        except (EOFError, OSError):
            loop.remove_reader(conn.fileno())
            inbox.put_nowait(None)

    loop.add_reader(conn.fileno(), readable)
    # libuv made the fd non-blocking; Connection.recv() needs it blocking to
    # read a message that arrives in several chunks.
    os.set_blocking(conn.fileno(), True)
    tasks: set[asyncio.Task[None]] = set()

    async def handle(rid: int, method: str, args: tuple[Any, ...]) -> None:
        try:
            if method == "connect":
                res: Any = await client.connect(*args)
            elif method == "snapshot":
                res = client.snapshot(*args)
            elif method == "close":
                await client.close(*args)
                res = None
            elif method == "read_batch":
                client.set_read_batch(*args)
                res = None
            else:
                raise ValueError(method)
            conn.send((rid, True, res))
        except Exception as e:
            conn.send((rid, False, f"{type(e).__name__}: {e}"))

    while True:
        msg = await inbox.get()
        if msg is None or msg[1] == "exit":
            break
        t = asyncio.create_task(handle(*msg))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    await client.close(linger=0.1)


class _Worker:
    def __init__(self, ctx: Any, sample_every: int, seed: int | None) -> None:
        self.conn, child = mp.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, sample_every, seed), daemon=True)
        self.proc.start()
        child.close()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next = 0
        loop = asyncio.get_running_loop()
        loop.add_reader(self.conn.fileno(), self._readable)
        os.set_blocking(self.conn.fileno(), True)  # see _worker_serve
        self._loop = loop

    def _readable(self) -> None:
        try:
            while self.conn.poll():
                rid, ok, res = self.conn.recv()
                fut = self._pending.pop(rid, None)
                if fut is None or fut.done():
                    continue
                if ok:
                    fut.set_result(res)
                else:
                    fut.set_exception(RuntimeError(f"worker {self.proc.pid}: {res}"))
        except (EOFError, OSError) as e:
            self._loop.remove_reader(self.conn.fileno())
            self.proc.join(0.5)
            why = f"worker {self.proc.pid} died (exit code {self.proc.exitcode}; {type(e).__name__}: {e})"
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(RuntimeError(why))
            self._pending.clear()

    async def call(self, method: str, *args: Any) -> Any:
        self._next += 1
        fut: asyncio.Future[Any] = self._loop.create_future()
        self._pending[self._next] = fut
        self.conn.send((self._next, method, args))
        return await fut

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self.conn.fileno())
        with contextlib.suppress(Exception):
            self.conn.send((0, "exit", ()))
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(1)
        self.conn.close()


class ClientPool:
    """Sockets spread over ``procs`` worker processes (0: in this process).

    Must be used inside a running event loop.  Sockets are dealt to the
    workers in contiguous slices; snapshots are summed.
    """

    def __init__(self, procs: int = 1, sample_every: int = 50, seed: int | None = None) -> None:
        self.procs = procs
        self.sample_every = sample_every
        self.seed = seed
        self._local: LoadClient | None = None
        self._workers: list[_Worker] = []

    async def start(self) -> None:
        if self.procs <= 0:
            self._local = LoadClient(self.sample_every, self.seed)
            return
        ctx = mp.get_context("spawn")
        self._workers = [
            _Worker(ctx, self.sample_every, None if self.seed is None else self.seed + i)
            for i in range(self.procs)
        ]
        # Wait until every worker answers (spawn takes a moment).
        await asyncio.gather(*(w.call("snapshot", False) for w in self._workers))

    @property
    def pids(self) -> list[int]:
        if self._local is not None:
            return [os.getpid()]
        return [w.proc.pid for w in self._workers if w.proc.pid is not None]

    async def connect(
        self,
        target: WSTarget,
        n: int,
        scripts: Script | Sequence[Script] = NO_SCRIPT,
        concurrency: int = 200,
        timeout: float = 30.0,
    ) -> ConnectReport:
        if self._local is not None:
            return await self._local.connect(target, n, scripts, concurrency, timeout)
        k = len(self._workers)
        calls = []
        start = 0
        for i, w in enumerate(self._workers):
            cnt = n // k + (1 if i < n % k else 0)
            part: Script | Sequence[Script] = (
                scripts if isinstance(scripts, Script) else list(scripts[start : start + cnt])
            )
            start += cnt
            if cnt:
                calls.append(
                    w.call("connect", target, cnt, part, max(1, concurrency // k), timeout)
                )
        rep = ConnectReport()
        for r in await asyncio.gather(*calls):
            rep.merge(r)
        return rep

    async def snapshot(self, take_samples: bool = True) -> Snapshot:
        if self._local is not None:
            return self._local.snapshot(take_samples)
        out = Snapshot()
        for s in await asyncio.gather(*(w.call("snapshot", take_samples) for w in self._workers)):
            out.merge(s)
        return out

    async def close(self) -> None:
        if self._local is not None:
            await self._local.close()
            return
        await asyncio.gather(*(w.call("close") for w in self._workers))

    async def set_read_batch(self, seconds: float) -> None:
        """See :meth:`LoadClient.set_read_batch`."""
        if self._local is not None:
            self._local.set_read_batch(seconds)
            return
        await asyncio.gather(*(w.call("read_batch", seconds) for w in self._workers))

    async def stop(self) -> None:
        if self._local is not None:
            await self._local.close(linger=0.0)
            self._local = None
        for w in self._workers:
            w.stop()
        self._workers = []
