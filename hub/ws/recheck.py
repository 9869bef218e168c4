"""Re-checking open sockets and subscriptions against what is allowed now.

Revocations and membership removals reach a hub as control messages on NATS
(``hub/revocations.py``, ``Realtime.on_control``), which act at once. A hub whose NATS
link was down misses them (core NATS keeps nothing for an absent subscriber), so after
every NATS reconnect, and every ``HUBBUB_RECHECK_INTERVAL_S``, a pass re-checks:

1. every socket against the deny-list — in memory, no I/O: a revoked session's socket
   is closed with 4001, a deactivated user's with 4003;
2. every subscription to a members-only channel (``workspace:``, ``chat:``) through
   ``ChannelAuthorizer``: one check per distinct (user, channel), at most
   ``CONCURRENCY`` at a time. A definite ``forbidden`` drops that user's subscriptions
   to the channel with an ``unsubscribed`` push (4003), the path a control message
   takes. Anything else — a worker or Redis outage, a timeout — keeps the subscription:
   an outage must never cut everyone off; the check is tried again later.

The periodic pass first reloads the deny-list (from the workers and Redis: it also
catches a control message dropped without a reconnect) and then reads the authorizer's
Redis cache, whose entries membership changes delete: one Redis read per pair, cheap
when nothing changed. The pass after a reconnect loads the deny-list once more if the
reconnect's own loads have not succeeded yet, trusts nothing cached (``fresh``: a worker
answers from the database) and tries the pairs it could not decide again with backoff,
since the workers may themselves still be re-subscribing after a NATS restart. Hubs
spread their passes: the periodic one waits between half and all of the interval, the
one after a reconnect a random fraction of ``RECONNECT_SPREAD_S``, so hubs that
reconnect together do not ask at the same instant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from hubbub.contracts.api.channels import ChannelAction
from hubbub.contracts.channels import Channel, SubscribeRule
from hubbub.contracts.envelope import Caller
from hubbub.contracts.errors import Forbidden
from hubbub.tasks import cancel_and_wait

if TYPE_CHECKING:
    from hub.ws.service import Realtime

log = logging.getLogger("hubbub.ws.recheck")

CONCURRENCY = 16  # membership checks in flight at once, per hub
RECONNECT_SPREAD_S = 1.0  # the pass after a reconnect starts within this
RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 16.0)  # undecided checks after a reconnect, again

Pair = tuple[str, str]  # (user id, channel)


class Rechecker:
    def __init__(
        self,
        realtime: Realtime,
        interval: float,
        *,
        concurrency: int = CONCURRENCY,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.realtime = realtime
        self.interval = interval
        self.concurrency = concurrency
        self.rng = rng
        self.passes = 0  # completed, for tests and metrics
        self._lock = asyncio.Lock()  # one pass at a time
        self._periodic: asyncio.Task[None] | None = None
        self._after_reconnect: asyncio.Task[None] | None = None
        self._undecided = False  # the last pass could not decide some checks
        self._reload_failed = False

    # --- lifetime -------------------------------------------------------------------------

    def start(self) -> None:
        self._periodic = asyncio.create_task(self._every_interval(), name="ws-recheck")
        self.realtime.revocations.on_caught_up.append(self.close_revoked)

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.realtime.revocations.on_caught_up.remove(self.close_revoked)
        tasks = (self._periodic, self._after_reconnect)
        self._periodic = self._after_reconnect = None
        await cancel_and_wait(*tasks)

    def close_revoked(self) -> None:
        """The deny-list caught up after a reconnect (``hub/revocations.py``), maybe after
        this hub's pass: close the sockets it now denies, as a pass does (no I/O)."""
        closed = sum(self.realtime.close_if_revoked(c) for c in list(self.realtime.connections))
        if closed:
            log.info("the deny-list caught up: closed %d sockets", closed)

    async def after_reconnect(self) -> None:
        """The NATS reconnect hook: start a fresh pass in the background (the NATS
        client awaits its hooks before it carries on) and return."""
        if self._after_reconnect is not None:
            self._after_reconnect.cancel()  # a newer outage: its pass starts over
        self._after_reconnect = asyncio.create_task(
            self._fresh_with_retries(), name="ws-recheck-reconnect"
        )

    async def _fresh_with_retries(self) -> None:
        await asyncio.sleep(self.rng() * RECONNECT_SPREAD_S)
        revocations = self.realtime.revocations
        # The reconnect's own loads (in the background) have not succeeded yet: one more,
        # after whichever is under way, so that this pass sees what the link missed.
        reload = revocations.behind or not revocations.synced
        undecided = await self.run(fresh=True, reload=reload)
        for delay in RETRY_DELAYS_S:
            if not undecided:
                return
            await asyncio.sleep(delay)
            undecided = await self.run(fresh=True, reload=reload, only=undecided)
        # Still undecided: the periodic passes keep trying.

    async def _every_interval(self) -> None:
        while True:
            # Jittered below the interval, so that the setting bounds the time between passes.
            await asyncio.sleep(self.interval * (0.5 + 0.5 * self.rng()))
            try:
                await self.run(fresh=False, reload=True)
            except Exception:
                log.exception("a re-check pass failed")

    # --- one pass ---------------------------------------------------------------------------

    async def run(
        self, *, fresh: bool, reload: bool = False, only: set[Pair] | None = None
    ) -> set[Pair]:
        """One pass over this hub's sockets; returns the (user, channel) pairs whose
        membership it could not decide (they were kept)."""
        async with self._lock:
            if reload:
                await self._reload()
            closed = sum(self.realtime.close_if_revoked(c) for c in list(self.realtime.connections))
            pairs = self.member_subscriptions()
            if only is not None:
                pairs = {pair: caller for pair, caller in pairs.items() if pair in only}
            dropped, undecided = await self._check_all(pairs, fresh)
            self.passes += 1
        if closed or dropped:
            log.info(
                "re-check closed %d sockets and dropped %d subscriptions",
                closed,
                dropped,
                extra={"fresh": fresh, "checked": len(pairs)},
            )
        if undecided and not self._undecided:
            log.warning(
                "re-check could not decide %d subscriptions (kept); will try again",
                len(undecided),
            )
        elif not undecided and self._undecided:
            log.info("re-check decides every subscription again")
        self._undecided = bool(undecided)
        return undecided

    async def _reload(self) -> None:
        try:
            await self.realtime.revocations.reload()
        except Exception as exc:
            if not self._reload_failed:
                log.warning("cannot reload the deny-list (%s); using the one in memory", exc)
            self._reload_failed = True
            return
        if self._reload_failed:
            log.info("the deny-list reloads again")
        self._reload_failed = False

    def member_subscriptions(self) -> dict[Pair, Caller]:
        """Each distinct (user, channel) among open subscriptions to members-only
        channels, with a caller to check it as."""
        members_only = {
            kind.value
            for kind, policy in self.realtime.policies.items()
            if policy.subscribe is SubscribeRule.WORKSPACE_MEMBER
        }
        pairs: dict[Pair, Caller] = {}
        for conn in list(self.realtime.connections):
            if conn.closed or conn.caller is None:
                continue
            for name in conn.subs:
                if name.partition(":")[0] in members_only:
                    pairs.setdefault((conn.user_id, name), conn.caller)
        return pairs

    async def _check_all(self, pairs: dict[Pair, Caller], fresh: bool) -> tuple[int, set[Pair]]:
        todo = iter(pairs.items())
        undecided: set[Pair] = set()
        dropped = 0

        async def work() -> None:
            nonlocal dropped
            for (user_id, name), caller in todo:  # the workers share one iterator
                channel = Channel.parse(name)
                try:
                    await self.realtime.authorizer.check(
                        caller, channel, ChannelAction.SUBSCRIBE, fresh=fresh
                    )
                except Forbidden:
                    dropped += await self.realtime.membership_removed(user_id, channel)
                except Exception:
                    undecided.add((user_id, name))

        await asyncio.gather(*(work() for _ in range(min(self.concurrency, len(pairs)))))
        return dropped, undecided
