"""Fan-out: each channel a hub serves is a ``Feed`` with its local subscribers.

A hub subscribes to a channel's ``live.<kind>.<name>`` subject only while one of its
own sockets is subscribed (interest-based). Each publication is checked and encoded
once; publications that arrive in the same event-loop turn are coalesced into one write
per socket (frames stay separate on the wire; the write and its syscall are shared).

Offsets come from JetStream (``Nats-Sequence``), and ``Nats-Last-Sequence`` names the
previous publication of the same channel, so a feed notices when the (at-most-once)
republish lost one — e.g. across a NATS reconnect — and fills the gap from history
before going on. Subscribers see every offset once, in order. A gap that history cannot
fill (unreachable, or too long) is not skipped silently: the feed's sockets are closed
with 1001 and recover from history themselves when they resubscribe with ``since``.

Each feed keeps its tail (``tail.py``): the publications it passed on last, from which
a resubscribe with a recent ``since`` is answered without reading history.

A channel whose history keeps none of its publications has no offset of its own to place
a socket at. The feed reads the history's state then (``History.empty_channel``, one
read per feed, shared by the sockets that subscribe meanwhile): its sockets are placed
at the history's last offset (nothing of the channel up to it), and the tail vouches
from the history's first offset less one (retention drops the oldest first: nothing of
the channel after it was dropped). So a socket on a quiet channel resubscribes with a
position that a later feed, on any hub, can answer for as long as the history has
dropped nothing after it.

Offsets hold within one history epoch. When a kind's stream is recreated (a NATS reset,
then ``hubbub migrate``), its offsets start again at 1: a feed that sees a publication
at or below what it passed on, and every feed after a NATS reconnect, has the epoch
checked, and a feed of a reset history starts over and hands its sockets over (1001:
their resubscribe is told ``recovered: false`` under the new epoch).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from hub.ws import frames
from hub.ws.history import History
from hub.ws.tail import Tail, TailBudget
from hubbub.contracts.channels import Channel, ChannelKind, ChannelPolicy, SlowConsumerPolicy
from hubbub.contracts.errors import Unavailable
from hubbub.contracts.subjects import Subjects
from hubbub.tasks import cancel_and_wait

log = logging.getLogger("hubbub.ws.fanout")

REPAIR_LIMIT = 10_000
REPAIR_TRIES = 4  # a lagging replica catches up in milliseconds
REPAIR_BACKOFF_S = 0.05  # before the 2nd try; doubling
CATCH_UP_AT_ONCE = 16  # feeds checked at once after a reconnect
EPOCH_CHECK_INTERVAL_S = 5.0  # a kind's epoch checked at most this often on request
# A reconnect may meet a NATS server whose JetStream is still starting: the check after
# one is tried for about 5 s (the same doubling backoff, up to 2 s) before giving up.
CATCH_UP_TRIES = 8
CATCH_UP_BACKOFF_MAX_S = 2.0


@dataclass(slots=True)
class Item:
    offset: int
    key: str | None  # the conflation key, for conflate-by-key channels
    frame: bytes  # the whole WebSocket frame of the `pub` push


class Subscriber:
    """What a feed needs from a connection (``hub.ws.connection.Connection``)."""

    __slots__ = ()

    def deliver(self, feed: Feed, items: list[Item], joined: bytes) -> None: ...

    def missed(self, feed: Feed) -> None:
        """The feed lost publications it could not fetch again: recover them elsewhere."""


class Feed:
    __slots__ = (
        "batch",
        "channel",
        "empty_until",
        "epoch",
        "fanout",
        "history_offset",
        "last_offset",
        "live",
        "name",
        "policy",
        "reading",
        "ready",
        "scheduled",
        "sub",
        "tail",
        "waiting",
    )

    def __init__(self, fanout: Fanout, channel: Channel, policy: ChannelPolicy) -> None:
        self.fanout = fanout
        self.channel = channel
        self.name = str(channel)
        self.policy = policy
        self.live: dict[Subscriber, None] = {}
        self.waiting: dict[Subscriber, list[Item]] = {}  # subscribing: buffered meanwhile
        self.last_offset: int | None = None
        self.sub: Subscription | None = None
        self.batch: list[Item] = []
        self.scheduled = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # The channel's last offset as read from history while this feed listened. Safe
        # to reuse for later subscribers: anything newer arrives live after it.
        self.history_offset: int | None = None
        # When history kept none of the channel's publications (``history_offset`` 0):
        # its last offset then, where this feed's sockets are placed.
        self.empty_until: int | None = None
        # The read of ``history_offset`` under way, shared by the sockets that wait for it.
        self.reading: asyncio.Future[None] | None = None
        # The history epoch its offsets belong to: set by its first subscribe.
        self.epoch: str | None = None
        # What this feed passed on last, for resubscribes (``tail.py``).
        self.tail = Tail(
            fanout.tail_budget,
            max_items=policy.history_max_msgs,
            max_age_s=policy.history_max_age_s,
            clock=fanout.clock,
        )

    async def latest(self) -> int:
        """Where a socket that subscribes now is placed: the channel's current offset,
        from what this feed knows or else from history (read once for all the sockets
        that wait for it)."""
        while self.last_offset is None and self.history_offset is None:
            reading = self.reading
            if reading is None or reading.done():  # (its callback may not have run yet)
                reading = self.reading = asyncio.ensure_future(self._read_history())
                reading.add_done_callback(self._read)
            await asyncio.shield(reading)
        position = self.position
        assert position is not None
        return position

    def _read(self, reading: asyncio.Future[None]) -> None:
        if self.reading is reading:
            self.reading = None
        if not reading.cancelled():
            reading.exception()  # retrieved: each waiter has it raised

    async def _read_history(self) -> None:
        """The channel's last offset from history, read after this feed's subscription
        was in place: every publication after it reaches ``accept``. The tail vouches
        from there — or, when history keeps none of the channel's publications (offsets
        are shared by the channels of a kind, so that names none of its own), from the
        history's first offset less one, and sockets are placed at its last offset. A
        read that finds the history reset meanwhile (another epoch) is not used."""
        epoch = self.epoch
        history = self.fanout.history
        offset = await history.last_offset(self.channel)
        start: int | None = offset if offset > 0 else None
        empty_until: int | None = None
        if offset == 0 and epoch is not None:
            try:
                empty = await history.empty_channel(self.channel, epoch)
            except Unavailable as exc:  # sockets placed at 0 then: recovered less often
                log.debug("reading the history's state for %s failed: %r", self.name, exc)
                empty = None
            if empty is not None:
                first, empty_until = empty
                start = max(first - 1, 0)
        if self.epoch != epoch or self.history_offset is not None:
            return  # reset meanwhile: the next ``latest`` reads again
        self.history_offset, self.empty_until = offset, empty_until
        if self.last_offset is None and start is not None:
            self.tail.begin(start)

    @property
    def empty(self) -> bool:
        return not self.live and not self.waiting

    @property
    def position(self) -> int | None:
        """The channel offset every socket of this feed has seen up to: the last one it
        passed on, else the channel's last offset as history gave it to the first socket
        that subscribed (sockets are placed there) — on a history that kept none of the
        channel's, its last offset then. None before either."""
        if self.last_offset is not None:
            return self.last_offset
        return self.history_offset if not self.empty_until else self.empty_until

    @property
    def channel_last(self) -> int:
        """The offset of the channel's last publication as this feed knows it (0: none)."""
        if self.last_offset is not None:
            return self.last_offset
        return self.history_offset or 0

    # --- from NATS --------------------------------------------------------------------

    async def on_message(self, msg: Msg) -> None:
        headers = msg.headers or {}
        try:
            offset = int(headers["Nats-Sequence"])
            previous = int(headers.get("Nats-Last-Sequence") or 0)
        except (KeyError, ValueError):
            log.warning("live message without a sequence on %s; ignored", msg.subject)
            return
        known = self.position
        if known is not None:
            if offset <= known:
                # Seen already (a repair fetched it, or history held it) — or the
                # kind's history was reset and counts from 1 again: ask.
                self.fanout.check_epoch(self.channel.kind)
                return
            if previous > known:
                await self.repair(known, previous)
                if self.last_offset is not None and offset <= self.last_offset:
                    return
        self.accept(offset, msg.data)

    async def repair(self, after: int, upto: int) -> None:
        """Fetch publications (after, upto] from history and pass them on, in order.

        History is read with Direct Get, which any replica of a clustered stream answers,
        and a follower may be a few milliseconds behind the publication that showed the
        gap: a read that stops short of ``upto``, or fails, is tried again, a few times,
        from where it stopped. A gap that is still open after that, or longer than
        ``REPAIR_LIMIT``, is handed to the subscribers (``missed``)."""
        error: Exception | None = None
        for attempt in range(REPAIR_TRIES):
            if attempt:
                await asyncio.sleep(REPAIR_BACKOFF_S * 2 ** (attempt - 1))
            try:
                missing = await self.fanout.history.after(self.channel, after, REPAIR_LIMIT)
            except Exception as exc:
                error = exc
                continue
            error = None  # this read answered: what is left is history stopping short
            for publication in missing:
                if publication.offset > upto:
                    break
                if self.last_offset is None or publication.offset > self.last_offset:
                    self.accept(publication.offset, publication.data)
            if self.last_offset is not None:
                after = max(after, self.last_offset)
            if after >= upto:
                return
            if len(missing) >= REPAIR_LIMIT:
                break
        log.warning(
            "could not fill the gap on %s (%s..%s): its sockets reconnect to recover",
            self.name,
            after,
            upto,
            extra={"error": repr(error) if error is not None else "history stops short"},
        )
        self.hand_over()

    def adopt_epoch(self, epoch: str) -> bool:
        """Take ``epoch`` as the one this feed's offsets belong to. A different one than
        it had means the history was reset: what the feed knows is void, it starts over,
        and its sockets are handed over. True when that happened."""
        if self.epoch is None:
            self.epoch = epoch
            return False
        if self.epoch == epoch:
            return False
        self.epoch = epoch
        self.last_offset = self.history_offset = self.empty_until = None
        self.batch.clear()
        self.hand_over()
        return True

    def hand_over(self) -> None:
        """Tell every socket, live or subscribing, that this feed lost publications it
        cannot fetch again: each recovers them from history itself (``missed``)."""
        self.tail.reset()  # the gap is not in it: it vouches only for what comes after
        for subscriber in [*self.live, *self.waiting]:
            subscriber.missed(self)

    def accept(self, offset: int, data: bytes) -> None:
        self.last_offset = offset
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            # Backends must publish JSON objects; anything else would break clients.
            self.fanout.invalid_publications += 1
            log.error("publication %s on %s is not a JSON object; dropped", offset, self.name)
            return
        key = None
        if self.policy.slow_consumer is SlowConsumerPolicy.CONFLATE:
            raw = value.get(self.policy.conflate_key)
            key = None if raw is None else str(raw)
        self.tail.add(offset, data)
        self.batch.append(Item(offset, key, frames.text_frame(frames.pub(self.name, offset, data))))
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        items, self.batch = self.batch, []
        if not items:
            return
        joined = items[0].frame if len(items) == 1 else b"".join(i.frame for i in items)
        for subscriber in self.live:
            subscriber.deliver(self, items, joined)
        for buffered in self.waiting.values():
            buffered.extend(items)


def _catch_up_pause(attempt: int) -> float:
    """Before try ``attempt`` (1 on) of a check after a reconnect: doubling, capped."""
    return float(min(REPAIR_BACKOFF_S * 2 ** (attempt - 1), CATCH_UP_BACKOFF_MAX_S))


class Fanout:
    def __init__(
        self,
        nc: NATS,
        subjects: Subjects,
        history: History,
        policies: dict[object, ChannelPolicy],
        *,
        tail_budget: TailBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.nc = nc
        self.subjects = subjects
        self.history = history
        self.policies = policies
        # The bytes all feeds' tails may keep together (none: tails keep nothing).
        self.tail_budget = tail_budget if tail_budget is not None else TailBudget(0)
        self.clock = clock
        self.feeds: dict[str, Feed] = {}
        # Publications dropped as not JSON objects, by all feeds ever: a counter that
        # a feed's release does not lower.
        self.invalid_publications = 0
        self._catching_up: asyncio.Task[None] | None = None  # ``after_reconnect``'s pass
        # Epoch checks: the one under way per kind, and when each kind was last checked.
        self._checking: dict[ChannelKind, asyncio.Task[None]] = {}
        self._checked_at: dict[ChannelKind, float] = {}
        self._stopped = False

    async def feed(self, channel: Channel) -> Feed:
        """The channel's feed, with its NATS subscription in place (created if needed)."""
        name = str(channel)
        feed = self.feeds.get(name)
        if feed is None:
            feed = self.feeds[name] = Feed(self, channel, self.policies[channel.kind])
            try:
                feed.sub = await self.nc.subscribe(
                    self.subjects.live(channel), cb=feed.on_message, pending_msgs_limit=100_000
                )
                # The history read that follows goes on this connection, behind the SUB:
                # the server has our interest before it answers that read.
                await self.nc.flush()
            except BaseException as exc:
                del self.feeds[name]
                feed.ready.set_exception(exc)
                feed.ready.exception()  # retrieved: no "never retrieved" warning
                raise
            feed.ready.set_result(None)
        else:
            await asyncio.shield(feed.ready)
        return feed

    def releasable(self, feed: Feed) -> bool:
        """Whether ``release`` would let ``feed`` go now: no local socket wants it, it is
        still the channel's feed, and it is set up."""
        return feed.empty and self.feeds.get(feed.name) is feed and feed.ready.done()

    async def release(self, feed: Feed) -> None:
        """Drop the feed's NATS interest once no local socket wants it."""
        if not self.releasable(feed):
            return
        del self.feeds[feed.name]
        feed.tail.clear()
        if feed.sub is not None:
            try:
                await feed.sub.unsubscribe()
            except Exception:
                log.debug("unsubscribe of %s failed", feed.name, exc_info=True)

    async def after_reconnect(self) -> None:
        """The NATS reconnect hook: start ``repair_all`` in the background and return
        (the NATS client awaits its hooks before it carries on, and the hooks after this
        one should not wait for a slow history). A newer reconnect starts it over."""
        if self._catching_up is not None:
            self._catching_up.cancel()
        self._catching_up = asyncio.create_task(self._repair_all_logged(), name="feed-catch-up")

    async def _repair_all_logged(self) -> None:
        try:
            await self.repair_all()
        except Exception:
            log.exception("catching up after a NATS reconnect failed")

    async def stop(self) -> None:
        self._stopped = True  # no epoch check starts after this
        task, self._catching_up = self._catching_up, None
        await cancel_and_wait(task)
        for check in list(self._checking.values()):
            await cancel_and_wait(check)

    def check_epoch(self, kind: ChannelKind) -> None:
        """Have ``kind``'s history epoch checked in the background: now, or, within
        ``EPOCH_CHECK_INTERVAL_S`` of the last check, once that interval ends (a repair's
        duplicates come in bursts). A request while a check is pending joins it."""
        if kind in self._checking or self._stopped:
            return
        task = asyncio.create_task(self._check_epoch_soon(kind), name=f"epoch-{kind.value}")
        self._checking[kind] = task
        task.add_done_callback(lambda _: self._checking.pop(kind, None))

    async def _check_epoch_soon(self, kind: ChannelKind) -> None:
        checked = self._checked_at.get(kind)
        if checked is not None:
            wait = checked + EPOCH_CHECK_INTERVAL_S - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)
        try:
            await self.restart_reset_feeds(kind)
        except Exception as exc:  # the next publication at or below a feed's asks again
            log.debug("checking the %s history's epoch failed: %r", kind.value, exc)

    async def restart_reset_feeds(self, kind: ChannelKind) -> int:
        """Read ``kind``'s history epoch from its stream and start over every feed of
        that kind whose offsets belong to another (``Feed.adopt_epoch``); how many."""
        self._checked_at[kind] = self.clock()
        epoch = await self.history.epoch(kind, fresh=True)
        restarted = [
            feed.name
            for feed in list(self.feeds.values())
            if feed.channel.kind is kind and feed.epoch is not None and feed.adopt_epoch(epoch)
        ]
        if restarted:
            log.warning(
                "the %s channels' history was reset: %d feed(s) start over, their sockets "
                "reconnect and resubscribe",
                kind.value,
                len(restarted),
                extra={"feeds": restarted[:10], "epoch": epoch},
            )
        return len(restarted)

    async def _recheck_epoch(self, kind: ChannelKind) -> bool:
        """``restart_reset_feeds`` after a reconnect, tried as ``catch_up`` tries (JetStream
        may still be starting, or its streams not made again yet). When it still fails on
        a connected bus, the kind's feeds hand their sockets over: their offsets may
        belong to a history that is gone. True when they did (nothing left to catch up)."""
        error: Exception | None = None
        for attempt in range(CATCH_UP_TRIES):
            if attempt:
                await asyncio.sleep(_catch_up_pause(attempt))
            try:
                await self.restart_reset_feeds(kind)
                return False
            except Exception as exc:
                error = exc
        if not self.nc.is_connected:
            return False  # the next reconnect checks again
        feeds = [feed for feed in self.feeds.values() if feed.channel.kind is kind]
        for feed in feeds:
            feed.hand_over()
        log.warning(
            "cannot check whether the %s channels' history was reset: %d feed(s) hand "
            "their sockets over",
            kind.value,
            len(feeds),
            extra={"error": repr(error)},
        )
        return True

    async def repair_all(self) -> None:
        """After a NATS reconnect: fetch whatever each feed missed meanwhile, a few feeds
        at a time. Without this, what was published while the hub was away would reach
        its sockets only when the next publication's ``Nats-Last-Sequence`` showed the
        gap — on a quiet channel, not at all."""
        at_once = asyncio.Semaphore(CATCH_UP_AT_ONCE)

        async def catch_up(feed: Feed) -> Exception | None:
            async with at_once:
                return await self.catch_up(feed)

        # A reconnect may follow a NATS reset: offsets of a recreated history are new.
        kinds = list({feed.channel.kind for feed in self.feeds.values() if feed.epoch})
        handed_over = await asyncio.gather(*(self._recheck_epoch(kind) for kind in kinds))
        gone = {kind for kind, over in zip(kinds, handed_over, strict=True) if over}
        feeds = [feed for feed in self.feeds.values() if feed.channel.kind not in gone]
        errors = await asyncio.gather(*(catch_up(feed) for feed in feeds))
        given_up = [(feed.name, error) for feed, error in zip(feeds, errors, strict=True) if error]
        if given_up:  # one line for the pass, however many feeds an outage touched
            log.warning(
                "cannot check %d feed(s) for publications missed while reconnecting: "
                "their sockets reconnect to recover",
                len(given_up),
                extra={"feeds": [name for name, _ in given_up[:10]], "error": repr(given_up[0][1])},
            )

    async def catch_up(self, feed: Feed) -> Exception | None:
        """Compare ``feed``'s position with its channel's last offset and repair what lies
        between. The check is tried for a few seconds; when it still fails on a connected
        bus, the feed's sockets are told they missed publications (they reconnect and
        recover from history), since nothing else would reveal a gap at the channel's
        tail, and the check's error is returned. When the bus is cut again, the next
        reconnect checks again."""
        error: Exception | None = None
        for attempt in range(CATCH_UP_TRIES):
            if attempt:
                await asyncio.sleep(_catch_up_pause(attempt))
            if feed.position is None or self.feeds.get(feed.name) is not feed:
                return None  # no socket placed yet, or released
            try:
                latest = await self.history.last_offset(feed.channel)
            except Exception as exc:
                error = exc
                continue
            known = feed.position  # a live publication may have moved it meanwhile
            if known is not None and latest > known:
                await feed.repair(known, latest)
            return None
        if error is None or not self.nc.is_connected:
            return None
        feed.hand_over()
        return error

    def names(self) -> Iterable[str]:
        return self.feeds.keys()
