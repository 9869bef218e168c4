"""``subscribe`` and ``unsubscribe``: a socket's subscriptions, their recovery from
history, their presence, and their end when a membership is removed.

A subscription is checked by the channel authorizer (``authz.py``), joins the hub's one
feed per channel (``fanout.py``), and is answered with what the client missed since its
``since`` (``_recover``): from the feed's tail when it reaches back that far, else from
history. Publications that arrive while the history is read are
buffered and sent after the reply, so each offset reaches the client exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
import time

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from hub.ws import commands as cmd
from hub.ws import frames
from hub.ws.authz import ChannelAuthorizer
from hub.ws.connection import Connection
from hub.ws.fanout import Fanout, Feed
from hub.ws.history import History
from hub.ws.presence import Presence, read_diff
from hubbub.config import Settings
from hubbub.contracts.api.channels import ChannelAction
from hubbub.contracts.channels import Channel
from hubbub.contracts.errors import Conflict, Forbidden, NotFound, TooLarge, Unavailable
from hubbub.contracts.protocol import CloseCode, Push
from hubbub.contracts.subjects import Subjects
from hubbub.tasks import cancel_and_wait

log = logging.getLogger("hubbub.ws")

MAX_RECOVERY = 10_000  # publications replayed by one subscribe; more → recovered: false
MAX_RECOVERY_BYTES = 4 * 1024 * 1024  # and their data's size; more → recovered: false


_MEMBERSHIP_REMOVED = "your membership was removed"


class _HistoryReset(Exception):
    """A subscribe's history epoch turned out to be stale: the stream was recreated."""


DROPPED_LOG_INTERVAL_S = 60.0  # what is dropped from presence subjects: logged this often

PARSED_CACHE_SIZE = 4096  # channel names whose parse is remembered

# A presence resync that finds Redis unreachable (it often goes with NATS) waits this
# long before it tries the channels left again, then the last delay until Redis answers.
RESYNC_RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 16.0)


def parse_channel(raw: str) -> tuple[Channel, str]:
    """``Channel.parse(raw)`` and the channel's name, interned: the key of every socket's
    subscription to it is one string.

    Remembered per name (every socket of a reconnect storm subscribes to the same few
    channels): the result depends on the text alone, and a ``Channel`` is frozen, so
    sockets share it. A name that does not parse is not remembered: it raises each time.
    When the cache is full it starts over."""
    known = _parsed.get(raw)
    if known is not None:
        return known
    channel = Channel.parse(raw)
    parsed = (channel, sys.intern(str(channel)))
    if len(_parsed) >= PARSED_CACHE_SIZE:
        _parsed.clear()
    _parsed[raw] = parsed
    return parsed


_parsed: dict[str, tuple[Channel, str]] = {}


class Subscriptions:
    def __init__(
        self,
        *,
        settings: Settings,
        nc: NATS,
        subjects: Subjects,
        history: History,
        fanout: Fanout,
        authorizer: ChannelAuthorizer,
        presence: Presence,
        by_user: dict[str, set[Connection]],
    ) -> None:
        self.settings = settings
        self.nc = nc
        self.subjects = subjects
        self.history = history
        self.fanout = fanout
        self.authorizer = authorizer
        self.presence = presence
        self.by_user = by_user  # the sessions' index of sockets per user
        self._presence_subs: dict[str, Subscription] = {}
        self._resyncing: asyncio.Task[None] | None = None  # ``after_reconnect``'s pass
        self._stopped = False
        self.resync_retry_delays: tuple[float, ...] = RESYNC_RETRY_DELAYS_S
        self.presence_dropped = 0  # messages on presence subjects that were no diff
        self._dropped_logged_at = -DROPPED_LOG_INTERVAL_S

    async def subscribe(self, conn: Connection, command: cmd.Subscribe | cmd.SubscribeCall) -> None:
        channel, name = parse_channel(command.channel)
        if name in conn.subs:
            raise Conflict("already subscribed to this channel", channel=name)
        if len(conn.subs) >= self.settings.ws_max_subscriptions:
            raise TooLarge(
                f"at most {self.settings.ws_max_subscriptions} subscriptions per connection",
                limit=self.settings.ws_max_subscriptions,
            )
        caller = conn.caller
        assert caller is not None
        # Reserved before the access check: a second subscribe meanwhile is a conflict,
        # and a membership removed while the check or the history read is awaited takes
        # the reservation away (``membership_removed``), which ends this subscribe below.
        conn.subs[name] = 0
        try:
            if not self.authorizer.allowed_by_policy(caller, channel, ChannelAction.SUBSCRIBE):
                await self.authorizer.check(caller, channel, ChannelAction.SUBSCRIBE)
            # The channel's feed, when it is listening already (most subscribes: every
            # socket of a storm joins the same few); else made or awaited by the fan-out.
            feed = self.fanout.feeds.get(name)
            if feed is None or not feed.ready.done():
                feed = await self.fanout.feed(channel)
        except BaseException:
            conn.subs.pop(name, None)
            raise
        feed.waiting[conn] = []
        try:
            epoch, latest = await self._place(conn, feed)
            publications: list[tuple[int, bytes]] = []
            if command.since is None:  # a first subscribe: nothing to recover
                recovered, position = False, latest
            else:
                try:
                    recovered, publications, position = await self._recover(
                        conn, feed, command.since, epoch, latest
                    )
                except _HistoryReset:
                    # The client's position, and the feed's, belong to a history that
                    # is gone: the feed starts over, the client is placed anew.
                    epoch, latest = await self._place(conn, feed)
                    recovered, position = False, latest
        except BaseException:
            feed.waiting.pop(conn, None)
            conn.subs.pop(name, None)
            await self._let_go(feed)
            raise
        if conn.closed or name not in conn.subs:  # gone while we checked and read
            feed.waiting.pop(conn, None)
            await self._let_go(feed)
            if conn.closed:
                return  # nobody to answer
            raise Forbidden(_MEMBERSHIP_REMOVED, channel=name)
        reply = _subscribe_reply(command.id, name, position, epoch, recovered, publications)
        if publications:
            conn.send_recovery(reply)  # not counted against the send limits on its way
        else:
            conn.send(reply)
        # Live from here: what arrived meanwhile, then everything new; each offset once.
        conn.subs[name] = position
        buffered = feed.waiting.pop(conn, [])
        feed.live[conn] = None
        pending = [item for item in buffered if item.offset > position]
        if pending:
            conn.deliver(feed, pending, b"".join(i.frame for i in pending))
        if feed.policy.presence:
            await self._presence_join(conn, channel)

    async def _place(self, conn: Connection, feed: Feed) -> tuple[str, int]:
        """The history epoch and where ``conn`` is placed on ``feed`` (its channel's
        current offset, ``Feed.latest``)."""
        epoch = await self.history.epoch(feed.channel.kind)
        if feed.epoch != epoch:
            # The feed's first subscribe, or the history was reset since the feed's
            # offsets were read: then it starts over and hands its other sockets
            # over, and what this one buffered meanwhile belongs to the old history.
            buffered = feed.waiting.pop(conn, None)  # None: dropped meanwhile
            if feed.adopt_epoch(epoch):
                buffered = []
            if buffered is not None:
                feed.waiting[conn] = buffered
        latest = feed.last_offset  # what the feed knows, else from history
        if latest is None:
            latest = await feed.latest()
        return epoch, latest

    async def _recover(
        self, conn: Connection, feed: Feed, since: cmd.Since, epoch: str, latest: int
    ) -> tuple[bool, list[tuple[int, bytes]], int]:
        """What a resubscribing client missed: (recovered, publications, new position).

        Recovered means every publication after ``since.offset`` is in the reply — the
        epoch matches, and the feed's tail holds them all (``tail.py``), or else the
        history has dropped none of them: it still holds the one the client saw last
        (retention drops the oldest first, so then it holds all the later ones too), or,
        for a position that names none of the channel's (where a hub places a socket on a
        channel whose history kept none: ``Feed.latest``), nothing after it was dropped —
        the history's first offset is at most one past it, and the channel's own limit
        has not been reached; and one past the channel's last publication is recovered
        while the history, asked then, reaches it (``_HistoryReset`` when it is of
        another epoch than ``epoch``: recreated meanwhile, which is asked again after
        whatever the history was read for). At most
        ``MAX_RECOVERY_BYTES`` of data less what the socket's earlier recoveries still
        have on their way (``Connection.send_recovery``); more is not recovered."""
        channel = feed.channel
        max_bytes = MAX_RECOVERY_BYTES - conn.recovery_pending()
        if since.epoch != epoch:
            return False, [], latest
        target = feed.channel_last  # the last publication a replay must reach
        if since.offset > latest:
            # Ahead of this hub's feed is not ahead of the channel: the client may come
            # from a hub whose feed is further on, or from a replay of history while this
            # feed works through a backlog. The stream's own last offset decides.
            last = await self.history.last_offset(channel)
            latest, target = max(latest, last), max(target, last)
            if since.offset > latest:
                # Past the channel's last publication: a position given on a channel
                # whose history kept none of its publications, everything of the channel
                # up to it seen. Only one past the history's end is not recovered.
                if await self.history.reaches(channel.kind, epoch, since.offset):
                    return True, [], since.offset
                if await self.history.epoch(channel.kind) != epoch:
                    raise _HistoryReset  # the stream was recreated meanwhile
                return False, [], latest
        if since.offset == latest and latest > 0:  # the client is where the channel is
            return True, [], latest
        if latest == feed.position:  # the tail reaches as far as the client is placed
            kept = feed.tail.after(since.offset)
            if kept is not None and sum(len(data) for _, data in kept) <= max_bytes:
                return True, kept, latest
        recovered, publications, position = await self._recover_from_history(
            conn, feed, since, epoch, latest, target, max_bytes
        )
        if recovered:
            # What was read may be of a history recreated since the epoch was: the
            # client's offset may name a publication of the new one. Only the stream's
            # leader says (Direct Gets are answered by any replica): while it cannot,
            # say during an election, the recovery is not vouched for.
            try:
                current = await self.history.is_current(channel.kind, epoch)
            except Unavailable:
                return False, [], latest
            if not current:
                raise _HistoryReset
        return recovered, publications, position

    async def _recover_from_history(
        self,
        conn: Connection,
        feed: Feed,
        since: cmd.Since,
        epoch: str,
        latest: int,
        target: int,
        max_bytes: int,
    ) -> tuple[bool, list[tuple[int, bytes]], int]:
        """``_recover`` from the channel's history, when the feed's tail does not reach."""
        channel = feed.channel
        # Its own publication, still held: nothing after it was dropped. Else the history
        # must have dropped nothing after it (the channel's own limit is checked below).
        held = since.offset > 0 and await self.history.holds(channel, since.offset)
        per_channel = -1  # what the channel's own limit keeps: no matter when held
        if not held:
            limit = await self.history.kept_after(channel.kind, epoch, since.offset)
            if limit is None:
                return False, [], latest
            per_channel = limit
        if target <= since.offset:  # the channel published nothing after it
            return True, [], latest
        if max_bytes <= 0:
            return False, [], latest
        found = await self.history.after(
            channel,
            since.offset,
            MAX_RECOVERY,
            max_bytes,
            still_wanted=lambda: not conn.lost(),  # a socket gone meanwhile: nobody to tell
        )
        if not found or found[-1].offset < target:
            return False, [], latest  # more than we replay: reload instead
        if 0 < per_channel <= found.read:
            # As many as the channel keeps (skipped ones too: they count against its
            # limit): its own limit may have dropped older ones.
            return False, [], latest
        return True, [(p.offset, p.data) for p in found], max(latest, found[-1].offset)

    async def unsubscribe(self, conn: Connection, command: cmd.Unsubscribe) -> dict[str, str]:
        channel, name = parse_channel(command.channel)
        if name not in conn.subs:
            raise NotFound("not subscribed to this channel", channel=name)
        await self.drop(conn, channel)
        return {}

    async def drop(self, conn: Connection, channel: Channel) -> None:
        name = str(channel)
        conn.subs.pop(name, None)
        feed = self.fanout.feeds.get(name)
        if feed is None:
            return
        feed.live.pop(conn, None)
        feed.waiting.pop(conn, None)
        if feed.policy.presence:
            try:
                await self.presence.leave(channel, conn.user_id, conn.id)
            except Exception:
                log.warning("presence leave failed", exc_info=True)
        await self._let_go(feed)

    async def _let_go(self, feed: Feed) -> None:
        """Once no socket of this hub is on ``feed`` (live or subscribing), the fan-out
        drops its NATS interest, and the channel's presence subscription goes with it."""
        if not self.fanout.releasable(feed):
            return  # still wanted, released already (a newer feed may have the name), or not set up
        await self._unwatch_presence(feed.name)
        await self.fanout.release(feed)

    async def _unwatch_presence(self, name: str) -> None:
        sub = self._presence_subs.pop(name, None)
        if sub is not None:
            self.presence.unwatch(name)
            try:
                await sub.unsubscribe()
            except Exception:  # a closed or draining connection: its interest is gone
                log.debug("presence unsubscribe of %s failed", name, exc_info=True)

    async def drop_all(self, conn: Connection) -> None:
        for name in list(conn.subs):
            await self.drop(conn, parse_channel(name)[0])

    async def _presence_join(self, conn: Connection, channel: Channel) -> None:
        name = str(channel)
        if name not in self._presence_subs:

            async def forward(msg: Msg) -> None:
                self._forward_presence(name, msg.data)

            self._presence_subs[name] = await self.nc.subscribe(
                self.subjects.presence(channel), cb=forward
            )
            self.presence.watch(name)  # only once ``_let_go`` will unwatch it
            if conn.closed or name not in conn.subs:
                # Dropped while that was awaited (its leave found nothing to leave): not
                # joined, or it would be renewed for ever. Its drop let the feed go when
                # it was the last, before this subscription was there to go with it.
                if self.fanout.feeds.get(name) is None:
                    await self._unwatch_presence(name)
                return
        try:
            await self.presence.join(channel, conn.user_id, conn.id)
        except Exception:
            log.warning("presence join failed", exc_info=True)

    def _forward_presence(self, name: str, data: bytes) -> None:
        """A diff published on ``name``'s presence subject, to this hub's sockets on it.
        Anything else published there (by whoever may publish on it) is dropped."""
        # The channel's feed now: a feed released and made again is a new one.
        current = self.fanout.feeds.get(name)
        if current is None:
            return
        diff = read_diff(data, name)
        if diff is None:
            self._not_a_diff(name)
            return
        joined, left = diff
        self.presence.forwarded(name, joined, left)
        self._push_presence(
            current, frames.push(Push.PRESENCE, channel=name, joined=joined, left=left)
        )

    def _push_presence(self, feed: Feed, payload: bytes) -> None:
        """Bounded like a publication: a socket that lets its buffer fill is closed."""
        frame = frames.text_frame(payload)
        for subscriber in list(feed.live):
            if isinstance(subscriber, Connection):
                subscriber.push_frame(frame)

    def _not_a_diff(self, name: str) -> None:
        self.presence_dropped += 1
        now = time.monotonic()
        if now - self._dropped_logged_at >= DROPPED_LOG_INTERVAL_S:
            self._dropped_logged_at = now
            log.warning(
                "dropped a message on the presence subject of %s that is not a presence "
                "diff (%d so far)",
                name,
                self.presence_dropped,
            )

    async def after_reconnect(self) -> None:
        """The NATS reconnect hook: the diffs published while this hub's link was down
        are lost (presence is core NATS), so every socket here on a channel with presence
        is sent a diff that brings its member list up to date (``Presence.resync``). In
        the background: the NATS client waits for its hooks. A newer reconnect starts
        it over."""
        if self._stopped:
            return
        if self._resyncing is not None:
            self._resyncing.cancel()
        self._resyncing = asyncio.create_task(self.resync_presence(), name="presence-resync")

    async def stop(self) -> None:
        """End a resync still running (it may be waiting for Redis); none starts after."""
        self._stopped = True
        task, self._resyncing = self._resyncing, None
        await cancel_and_wait(task)

    async def resync_presence(self) -> None:
        """Resync every channel with presence; while Redis is unreachable, the channels
        not done yet are tried again after a backoff, until Redis answers."""
        delays = itertools.chain(
            self.resync_retry_delays, itertools.repeat(self.resync_retry_delays[-1])
        )
        left = await self._resync(list(self._presence_subs))
        if not left:
            return
        log.warning("presence not re-synced after a NATS reconnect: Redis unreachable; will retry")
        while left:
            await asyncio.sleep(next(delays))
            left = await self._resync(left)
        log.info("presence re-synced after a NATS reconnect, Redis answering again")

    async def _resync(self, names: list[str]) -> list[str]:
        """Send each channel of ``names`` its resync diff, in turn; the channels not done
        when Redis is found unreachable (the rest would wait on Redis too)."""
        for done, name in enumerate(names):
            feed = self.fanout.feeds.get(name)
            if feed is None or name not in self._presence_subs:
                continue  # let go of meanwhile: nobody here to tell
            try:
                payload = await self.presence.resync(feed.channel)
            except Unavailable:
                return names[done:]
            except Exception:
                log.exception("presence re-sync of %s failed", name)
                continue
            if payload is not None and self.fanout.feeds.get(name) is feed:
                self._push_presence(feed, payload)
        return []

    async def membership_removed(self, user_id: str, channel: Channel) -> int:
        """Drop ``user_id``'s subscriptions to ``channel`` on this hub, each with an
        ``unsubscribed`` push (4003); how many were dropped. A subscribe still being
        checked or read gets no push: it is answered ``forbidden`` (``subscribe``). The
        cached answers for the pair are not believed for a while (``authz.py``)."""
        self.authorizer.membership_removed(user_id, channel)
        name = str(channel)
        dropped = 0
        for conn in list(self.by_user.get(user_id, ())):
            if name in conn.subs and not conn.closed:
                feed = self.fanout.feeds.get(name)
                answered = feed is not None and conn in feed.live
                await self.drop(conn, channel)
                dropped += 1
                if not answered:
                    continue
                conn.send(
                    frames.push(
                        Push.UNSUBSCRIBED,
                        channel=name,
                        code=CloseCode.FORBIDDEN,
                        reason=_MEMBERSHIP_REMOVED,
                    )
                )
        return dropped


def _subscribe_reply(
    command_id: int | None,
    channel: str,
    offset: int,
    epoch: str,
    recovered: bool,
    publications: list[tuple[int, bytes]],
) -> bytes:
    pubs = b",".join(b'{"offset":%d,"data":%s}' % (o, d) for o, d in publications)
    body = b'{"channel":"%s","offset":%d,"epoch":"%s","recovered":%s,"publications":[%s]}' % (
        channel.encode(),
        offset,
        epoch.encode(),
        b"true" if recovered else b"false",
        pubs,
    )
    if command_id is None:  # asked in the upgrade request: a push with the same fields
        return b'{"push":"subscribed",%s' % body[1:]
    return frames.result(command_id, body)
