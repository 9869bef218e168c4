"""The fan-out benchmark's open-loop publisher: publications on a fixed schedule,
each stamped with its send time."""

from __future__ import annotations

import asyncio
import time

from bench.targets import Target


def make_payload(seq: int, size: int) -> bytes:
    """A JSON object of about ``size`` bytes with the send time in ``"t"``."""
    head = b'{"t":%d,"seq":%d,"pad":"' % (time.time_ns(), seq)
    pad = max(0, size - len(head) - 2)
    return head + b"x" * pad + b'"}'


class Publisher:
    """Open-loop publisher: issues publications on a fixed schedule."""

    def __init__(
        self,
        target: Target,
        channel: str,
        payload: int,
        max_inflight: int,
        subscribers: int,
    ) -> None:
        self.target = target
        self.channel = channel
        self.payload = payload
        self.max_inflight = max_inflight
        self.subscribers = subscribers
        self.seq = 0
        self.issued = 0
        self.accepted = 0
        self.errors = 0
        self.skipped = 0
        self.expected_frames = 0
        self.inflight = 0
        self.last_error = ""
        self._tasks: set[asyncio.Task[None]] = set()

    def reset(self) -> None:
        self.issued = self.accepted = self.errors = self.skipped = self.expected_frames = 0

    async def _one(self) -> None:
        self.seq += 1
        try:
            sent = await self.target.publish(self.channel, make_payload(self.seq, self.payload))
        except Exception as e:
            self.errors += 1
            self.last_error = f"{type(e).__name__}: {e}"[:200]
        else:
            self.accepted += 1
            self.expected_frames += self.subscribers if sent is None else sent
        finally:
            self.inflight -= 1

    async def run(self, rate: float, secs: float) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        k = 0
        while True:
            now = loop.time()
            if now - t0 >= secs:
                break
            due = int((now - t0) * rate) + 1
            while k < due:
                k += 1
                if self.inflight >= self.max_inflight:
                    self.skipped += 1
                    continue
                self.inflight += 1
                self.issued += 1
                t = asyncio.create_task(self._one())
                self._tasks.add(t)
                t.add_done_callback(self._tasks.discard)
            await asyncio.sleep(max(0.0, t0 + k / rate - loop.time()))

    async def wait_idle(self, timeout: float) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
