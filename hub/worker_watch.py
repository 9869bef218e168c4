"""Which workers are alive, from their heartbeats (``hubbub/contracts/heartbeat.py``);
when one falls silent, the hub's reads in flight are sent again.

A worker killed outright holds requests it will never answer, and the hub cannot tell
which of its requests those are. So when a worker misses ``MISSED_BEATS`` beats, every
read still waiting is published once more (``Replies.resend``) and whichever worker
answers first answers it — seconds after the death instead of at the deadline. A read
that a live worker was already doing is done twice; reads change nothing, and this
happens only when a worker is lost. Nothing that may write is sent again
(``hubbub/bus.py``).

Silence means something only while the hub itself hears NATS: nothing is counted lost
while it is disconnected, and after a reconnect (seen in the client's count of them, so
no sweep can come between the reconnect and the reset) every worker has a full grace
period again, as it has after a stall of the hub's own event loop, when beats may
still wait unread in its socket. A worker that says it is ``leaving`` has drained and is
forgotten. One warning when a worker is lost and one line if it beats again (a cut link
that healed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from hubbub.contracts.heartbeat import MISSED_BEATS, WorkerBeat, worker_beat
from hubbub.contracts.subjects import Subjects
from hubbub.nats_barrier import server_has_read
from hubbub.tasks import cancel_and_wait

log = logging.getLogger(__name__)

SWEEP_S = 0.25  # how often silence is looked for
# A sweep this late after the one before means the hub itself stalled (its event loop
# blocked): beats may be waiting unread in its socket, so silence is not judged then.
STALL_S = 1.0
LOST_KEPT = 256  # lost workers remembered (to say when one is back)


class WorkerWatch:
    def __init__(
        self,
        nc: NATS,
        subjects: Subjects,
        resend: Callable[[], int],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.nc = nc
        self.subjects = subjects
        self.resend = resend
        self.clock = clock
        self.alive: dict[str, tuple[float, float]] = {}  # worker → (silent after, beat every)
        self.lost: set[str] = set()  # lost, not heard from since
        self.resent = 0  # requests sent again, in all
        self._reconnects = self._reconnects_so_far()
        self._swept = clock()  # when the last sweep ran
        self._sub: Subscription | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(self.subjects.worker_beats, cb=self._on_message)
        await server_has_read(self.nc)
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="worker-watch")

    async def stop(self) -> None:
        sweeper, self._sweeper = self._sweeper, None
        await cancel_and_wait(sweeper)
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    def _reconnects_so_far(self) -> int:
        return int(self.nc.stats.get("reconnects", 0))

    def _grace_from(self, now: float) -> None:
        """Beats missed while the hub was away say nothing of the workers: each one gets
        a full grace period from ``now``."""
        for worker, (_, every) in self.alive.items():
            self.alive[worker] = (now + every * MISSED_BEATS, every)

    def beat(self, beat: WorkerBeat) -> None:
        if beat.leaving:
            self.alive.pop(beat.worker, None)
            self.lost.discard(beat.worker)
            log.debug("worker left", extra={"worker": beat.worker})
            return
        if beat.worker in self.lost:
            self.lost.discard(beat.worker)
            log.info("worker is back", extra={"worker": beat.worker})
        self.alive[beat.worker] = (self.clock() + beat.every * MISSED_BEATS, beat.every)

    def sweep(self) -> list[str]:
        """Count the workers silent past their grace lost, and send the reads in flight
        again if any was. Returns the lost workers. Called every ``SWEEP_S``; judges
        nothing while NATS is unreachable, and gives every worker a fresh grace after a
        reconnect or a stall of the hub's own."""
        if not self.nc.is_connected:
            return []
        now = self.clock()
        stalled = now - self._swept > STALL_S
        self._swept = now
        reconnects = self._reconnects_so_far()
        if reconnects != self._reconnects or stalled:
            self._reconnects = reconnects
            self._grace_from(now)
            return []
        gone = [worker for worker, (until, _) in self.alive.items() if until < now]
        if not gone:
            return []
        if len(self.lost) > LOST_KEPT:  # ids of workers long gone: forget them
            self.lost.clear()
        for worker in gone:
            del self.alive[worker]
            self.lost.add(worker)
        sent = self.resend()
        self.resent += sent
        log.warning("worker went silent", extra={"workers": gone, "reads_sent_again": sent})
        return gone

    async def _on_message(self, msg: Msg) -> None:
        try:
            beat = worker_beat.validate_json(msg.data)
        except ValidationError:
            log.warning("ignored a malformed heartbeat", extra={"subject": msg.subject})
            return
        self.beat(beat)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            try:
                self.sweep()
            except Exception:
                log.exception("looking for lost workers failed")
