"""Presence: who is on a channel, across every hub.

Each entry lives in Redis — a sorted set per channel scored by expiry, and a hash of the
entries' details — and its hub renews it every third of ``HUBBUB_PRESENCE_TTL_S``
(``renew_and_sweep``: a few channels per pipeline, each batch's expiry from its own
time). A hub that dies stops renewing: its members drop out of every read within the
TTL, and the next pass of a hub with members on that channel (up to a third of the TTL
later) removes them and announces their leave.

**A swept leave is owed until published.** A sweep does not hand its leaves over in its
reply alone — a connection lost while the reply is on its way (redis-py then raises, or
sends the pipeline again, whose sweep finds nothing left) would lose them: it moves them
into the channel's owed leaves in Redis and claims them for its hub (until a TTL later).
Every sweep hands its hub the owed leaves not claimed by another hub, its own again
included, each with its claim, and the hub's next pass lets go of those whose diff it
has published — each by its claim, so that an ack sent again (its first reply lost too)
never lets go of a leave of the same client owed since, under a claim of its own. So a
lost reply is made up by the next sweep, and a hub that died before letting go of them
by another once its claim lapses. A leave goes out twice when its claim lapsed after
its hub published it: that hub died, was cut off from Redis for a TTL, or lost the
replies of the passes that would have let go of it until the claim, set when the leave
was first claimed and not renewed, lapsed (harmless: a ``left`` for a client not listed
changes nothing). A member back
before its owed leave went out (renewed, or joined again) takes it out of the owed ones.
The same goes for a renewal's news, the members it found gone and put back: they wait
in the hub's returns in Redis, each with the stamp of the renewal that found it, handed
over by every renewal until the hub let go of them — by stamp — once their ``joined``
went out.

**One diff per channel per tick.** Joins and leaves are not announced one by one: a hub
collects them for ``TICK_S`` and then writes them to Redis in one pipeline and publishes
one ``presence`` push per channel, ``{"joined": [...], "left": [...]}``, on
``presence.<kind>.<name>`` (core NATS, not kept), which every hub serving the channel
writes to its subscribers as it is. A storm of n subscribes thus costs each subscriber
one frame per tick instead of one per join — O(n) frames per tick, not O(n²). Within a
tick the last change of a client wins (joined then left → left). A diff bigger than one
NATS message (``max_payload``, 1 MiB by default: some 13,000 changes) goes out as several
pushes, each client in one of them.

A member list is a snapshot (``snapshot``) plus the diffs after it, so every change to
what Redis holds is announced: a renewal that finds one of this hub's entries gone (swept
by another hub while its renewals could not get through, or never written) puts it back
and announces it ``joined`` again. A snapshot includes this hub's changes not yet sent
but publishes nothing: the diffs stay with the ticker.

**One snapshot per channel per tick.** Every socket of a reconnect storm asks for the
members of the same few channels: the sockets that ask within a tick share one read of
Redis, and one encoding of the reply while this hub's own members of the channel stay
the same — O(members) per tick, not per socket. A snapshot is never older than a diff
its socket was sent before asking: a diff forwarded on the channel, or written by this
hub, has the sockets that ask after it read Redis again (those that asked before it get
the diff after their reply, and apply it on top).

**Fail-open.** Presence is a courtesy, never a reason to refuse a subscription: when
Redis is unreachable the changes are still announced, the failure is logged once (and
its end once), and the renewal after Redis is back records this hub's entries again and
writes the leaves it could not, announcing them again (a snapshot taken while Redis still
listed them has them). A command Redis answers with an error (a key of the wrong type, a
script refused for lack of memory) fails its channel alone: the renewals and sweeps of
the others in its pipeline are announced, the later batches still run, and that channel
is tried again by the next pass (logged at most once a minute, with the count). A
channel's keys expire ``KEEP_TTLS`` TTLs after their last write, so the entries of hubs
that all died do not stay for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import orjson
from nats.aio.client import Client as NATS
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from hub.ws import frames
from hubbub.contracts.channels import Channel
from hubbub.contracts.protocol import Push
from hubbub.contracts.subjects import Subjects
from hubbub.dependencies import redis_outage, unavailable
from hubbub.keys import RedisKeys
from hubbub.log_every import LogEvery

log = logging.getLogger("hubbub.ws.presence")

TICK_S = 0.2  # joins and leaves are gathered this long into one diff per channel
STOP_FLUSH_S = 2.0  # on stop, the last leaves get this long to go out
KEEP_TTLS = 2  # a channel's presence keys expire this many TTLs after their last write
PUBLISH_HEADROOM = 1024  # a diff's pushes stay this far under NATS's max_payload
RENEW_BATCH = 64  # channels renewed and swept in one pipeline
REFUSED_LOG_S = 60.0  # at most one "Redis refused a renewal" line this often, with the count

# Renew this hub's entries (KEYS: the channel's entries, infos, swept and claims, and
# this hub's returns; ARGV: expiry, now, keys' lifetime in s, this pass's stamp, the
# number n of returns let go of, n client and stamp pairs, then client and info pairs).
# The returns this hub announced are let go of — each only while it is the one announced
# (its stamp unchanged): an ack sent again, its first reply lost, must not drop a return
# found since. Then the clients that were missing or expired — swept by another hub, or
# never written — are news: they join this hub's returns (client → stamp; a leave of
# theirs still owed is dropped), and the channel's keys are set to expire. The returns
# are handed over whole, client and stamp pairs, so that a reply lost on its way is made
# up by the next renewal.
RENEW = """
local now = tonumber(ARGV[2])
local first = 6 + 2 * tonumber(ARGV[5])
for i = 6, first - 1, 2 do
  if redis.call('HGET', KEYS[5], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[5], ARGV[i])
  end
end
for i = first, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if not score or tonumber(score) < now then
    redis.call('HSET', KEYS[5], ARGV[i], ARGV[4])
    redis.call('HDEL', KEYS[3], ARGV[i])
    redis.call('HDEL', KEYS[4], ARGV[i])
  end
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
if first <= #ARGV then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
local back = redis.call('HGETALL', KEYS[5])
if #back > 0 then
  redis.call('EXPIRE', KEYS[5], ARGV[3])
end
return back
"""

# Sweep: move the entries that expired into the channel's owed leaves (``swept``, client
# → info), and hand this hub the owed leaves to announce, claimed in ``claims`` (client →
# "token:pass deadline": this hub's, this pass's — unique — until the deadline). KEYS: the
# channel's entries, infos, swept and claims; ARGV: now, keys' lifetime in s, this hub's
# token, this pass's claim, then the client and claim pairs of the leaves this hub has
# published since its last pass, let go of here — each only while its claim is the one
# published: an ack sent again, its first reply lost, must not drop a leave owed since
# (swept anew, under a new claim). Returned: info and claim pairs of the owed leaves not
# claimed by another hub (a claim lapses at its deadline: that hub died, or lost Redis,
# before letting go of them), this hub's own under the claim they have — so a reply lost
# on its way is handed over again by the next sweep, as the same leave.
SWEEP = """
local now = tonumber(ARGV[1])
local mine = ARGV[3] .. ':'
for i = 5, #ARGV, 2 do
  if redis.call('HGET', KEYS[4], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[3], ARGV[i])
    redis.call('HDEL', KEYS[4], ARGV[i])
  end
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #expired > 0 then
  redis.call('ZREM', KEYS[1], unpack(expired))
  local infos = redis.call('HMGET', KEYS[2], unpack(expired))
  redis.call('HDEL', KEYS[2], unpack(expired))
  for i = 1, #expired do
    if infos[i] then
      redis.call('HSET', KEYS[3], expired[i], infos[i])
      redis.call('HDEL', KEYS[4], expired[i])
    end
  end
end
local owed = redis.call('HGETALL', KEYS[3])
local handed = {}
for i = 1, #owed, 2 do
  local claim = redis.call('HGET', KEYS[4], owed[i])
  local take = not claim or string.sub(claim, 1, #mine) == mine
  if not take then
    local space = string.find(claim, ' ', 1, true)
    local deadline = space and tonumber(string.sub(claim, space + 1))
    take = not deadline or deadline <= now
    claim = false  -- another hub's, lapsed: claimed anew
  end
  if take then
    if not claim then
      claim = ARGV[4]
      redis.call('HSET', KEYS[4], owed[i], claim)
    end
    handed[#handed + 1] = owed[i + 1]
    handed[#handed + 1] = claim
  end
end
if #owed > 0 then
  redis.call('EXPIRE', KEYS[3], ARGV[2])
  redis.call('EXPIRE', KEYS[4], ARGV[2])
end
return handed
"""

Entry = dict[str, str]  # {"user", "client"}: a member as a diff names it

# A member as this hub's sockets were told of it: its user id (a diff's entry), or its
# info JSON (a snapshot's; the user is read out of it only when a resync needs it).
Mention = str | bytes


def _user_of(mention: Mention) -> str:
    return mention if isinstance(mention, str) else str(orjson.loads(mention)["user"])


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


@dataclasses.dataclass(slots=True)
class _Watched:
    """What this hub's sockets on a channel may have been told, for their ``resync``:
    ``mentioned``, everyone a socket may believe present (from the snapshots answered
    and the diffs forwarded); ``told``, the clients every socket keeping a list knows
    of — from the diffs forwarded (every socket on the channel got them) and from the
    snapshots taken while the link to NATS was in step (``link``: its reconnect count
    when the lists were last whole; None while they may not be). A snapshot taken
    while diffs were being missed names members the other sockets never heard of."""

    link: int | None
    mentioned: dict[str, Mention] = dataclasses.field(default_factory=dict)
    told: set[str] = dataclasses.field(default_factory=set)


@dataclasses.dataclass(slots=True)
class _Snapshot:
    """A channel's snapshot while it is fresh (``Presence.snapshot``): the read of
    Redis issued at ``at`` (``Presence.monotonic``: a step of the wall clock neither
    keeps it fresh nor ages it; client id → info JSON; ``link``: the NATS link's reconnect
    count then, None while it was down), shared by every socket that asks meanwhile,
    and the reply's result built from it with this hub's members laid over (``members``
    and ``body``: None once one of them came or went), and which ``_Watched`` it was
    noted in."""

    at: float
    link: int | None
    read: asyncio.Task[dict[str, bytes]]
    members: dict[str, bytes] | None = None
    body: bytes | None = None
    mentioned_in: _Watched | None = None
    told_in: _Watched | None = None


def read_diff(data: bytes, channel: str) -> tuple[list[Entry], list[Entry]] | None:
    """The ``joined`` and ``left`` entries of a presence diff published for ``channel``,
    each reduced to ``{user, client}``; None for any other message on the subject (one
    that was not a hub's diff must not reach browsers as if it were)."""
    try:
        frame = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(frame, dict):
        return None
    if frame.get("push") != Push.PRESENCE.value or frame.get("channel") != channel:
        return None
    joined, left = _entries(frame.get("joined")), _entries(frame.get("left"))
    if joined is None or left is None:
        return None
    return joined, left


def _entries(value: object) -> list[Entry] | None:
    if not isinstance(value, list):
        return None
    entries: list[Entry] = []
    for item in value:
        if not isinstance(item, dict):
            return None
        user, client = item.get("user"), item.get("client")
        if not isinstance(user, str) or not isinstance(client, str):
            return None
        entries.append({"user": user, "client": client})
    return entries


# One client's change within a tick: (joined?, {"user", "client"}, write it to Redis?).
Change = tuple[bool, dict[str, str], bool]


def _pieces(name: str, diff: dict[str, Change], limit: int) -> list[bytes]:
    """The pushes of one channel's diff, each at most ``limit`` bytes (but for a single
    entry larger than that): a tick's changes on a busy channel (every socket of a hub
    closing together) may be more than one NATS message holds, and a publish over
    ``max_payload`` is refused outright. A client is in one diff once (its last change
    wins), so it is in one piece: its join and leave cannot cross between pieces, and
    the pieces go out in turn before the next tick's diff."""
    payload = frames.push(
        Push.PRESENCE,
        channel=name,
        joined=[info for is_join, info, _ in diff.values() if is_join],
        left=[info for is_join, info, _ in diff.values() if not is_join],
    )
    if len(payload) <= limit:
        return [payload]
    empty = len(frames.push(Push.PRESENCE, channel=name, joined=[], left=[]))
    pieces: list[bytes] = []
    joined: list[dict[str, str]] = []
    left: list[dict[str, str]] = []
    size = empty
    for is_join, info, _ in diff.values():
        entry = len(orjson.dumps(info)) + 1  # and its comma
        if size + entry > limit and (joined or left):
            pieces.append(frames.push(Push.PRESENCE, channel=name, joined=joined, left=left))
            joined, left, size = [], [], empty
        (joined if is_join else left).append(info)
        size += entry
    pieces.append(frames.push(Push.PRESENCE, channel=name, joined=joined, left=left))
    return pieces


class Presence:
    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        nc: NATS,
        subjects: Subjects,
        ttl: float,
        tick: float = TICK_S,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.nc = nc
        self.subjects = subjects
        self.ttl = ttl
        self.tick = tick
        self.clock = clock  # wall time: the entries' expiries in Redis, shared by every hub
        self.monotonic = monotonic  # this hub's own timings: a snapshot's freshness
        self.keep_s = max(1, math.ceil(KEEP_TTLS * ttl))  # the keys' lifetime
        self.local: dict[str, dict[str, bytes]] = {}  # channel → client id → info JSON
        self.changes: dict[str, dict[str, Change]] = {}  # channel → client id → change
        self.sending: dict[str, dict[str, Change]] = {}  # the changes a flush took out
        # Leaves announced but not written (Redis was unreachable): channel → client id →
        # user id. Announced again once written (``_wrote_unwritten``). Only the leaves of
        # clients Redis holds (``recorded``: their join or a renewal was written): one
        # whose join never got there has nothing to remove (were it there after all, it
        # expires with the TTL), so during a long outage this stays bounded by the
        # members Redis had, however many sockets come and go.
        self.unwritten: dict[str, dict[str, str]] = {}
        self.recorded: dict[str, set[str]] = {}  # channel → this hub's clients Redis holds
        # Per channel this hub forwards diffs on: what its sockets may have been told.
        self.watched: dict[str, _Watched] = {}
        self._snapshots: dict[str, _Snapshot] = {}  # channel → its snapshot, while fresh
        self._resyncing: dict[str, list[tuple[list[Entry], list[Entry]]]] = {}
        # The leaves a sweep handed this hub (``SWEEP``), channel → client id → its claim:
        # ``claimed`` until their diff is published, then ``acks`` until the next pass
        # lets go of them in Redis (of that claim's leave only); ``resweep``: the channels
        # whose last sweep's reply was lost (swept entries of theirs may be owed to this
        # hub's next pass).
        self.token = uuid.uuid4().hex  # this hub's name on its claims
        self.passes = 0  # the renewal batches so far: each one's claims and stamps unique
        self.claimed: dict[str, dict[str, str]] = {}
        self.acks: dict[str, dict[str, str]] = {}
        # The same for the returns a renewal found (``RENEW``), channel → client id → its
        # stamp: announced joined, then let go of.
        self.returned: dict[str, dict[str, str]] = {}
        self.returned_acks: dict[str, dict[str, str]] = {}
        self.resweep: set[str] = set()
        self.redis_ok = True
        self._refused_log = LogEvery(REFUSED_LOG_S, clock=monotonic)
        self._renew = redis.register_script(RENEW)
        self._sweep = redis.register_script(SWEEP)
        self._pending = asyncio.Event()
        self._flushing = asyncio.Lock()  # diffs go out in the order they were gathered
        self._tasks: list[asyncio.Task[None]] = []

    # --- joins and leaves ---------------------------------------------------------------

    async def join(self, channel: Channel, user_id: str, client_id: str) -> None:
        """Record ``client_id`` as present; announced (and stored) with the next diff."""
        name = str(channel)
        info = {"user": user_id, "client": client_id, "joined_at": round(self.clock(), 3)}
        self.local.setdefault(name, {})[client_id] = orjson.dumps(info)
        if client_id in self.unwritten.get(name, ()):  # back before its leave was written
            self._forget_unwritten(name, client_id)
            self.recorded.setdefault(name, set()).add(client_id)  # Redis still holds it
        self._change(name, client_id, (True, {"user": user_id, "client": client_id}, True))

    async def leave(self, channel: Channel, user_id: str, client_id: str) -> None:
        name = str(channel)
        entries = self.local.get(name)
        if entries is None or entries.pop(client_id, None) is None:
            return
        if not entries:
            del self.local[name]
        self._change(name, client_id, (False, {"user": user_id, "client": client_id}, True))

    def _change(self, name: str, client_id: str, change: Change) -> None:
        self.changes.setdefault(name, {})[client_id] = change
        self._pending.set()
        snapshot = self._snapshots.get(name)
        if snapshot is not None:
            snapshot.members = snapshot.body = None  # laid anew over the read, still good

    def _forget_unwritten(self, name: str, client_id: str) -> None:
        left = self.unwritten.get(name)
        if left is not None:
            left.pop(client_id, None)
            if not left:
                del self.unwritten[name]

    async def snapshot(self, channel: Channel) -> bytes:
        """The ``presence`` command's result, ``{"members": [{user, client, joined_at}]}``:
        everyone on the channel, as Redis has it with this hub's changes not yet written
        laid over it — so a client sees itself right after its subscribe. It publishes
        nothing: the diff of those changes goes out with the ticker. Shared by the
        sockets that ask within a tick (the module's docstring). Redis unreachable:
        ``unavailable`` (and the next socket to ask reads again)."""
        name = str(channel)
        snapshot = self._snapshots.get(name)
        if snapshot is None or self.monotonic() - snapshot.at >= self.tick:
            snapshot = self._read_snapshot(name)
        stored = await asyncio.shield(snapshot.read)  # one socket gone: not the others' read
        body = snapshot.body
        if body is None:
            members = snapshot.members = self._lay_over(name, stored)
            body = snapshot.body = b'{"members":[%b]}' % b",".join(members.values())
            snapshot.mentioned_in = snapshot.told_in = None
        self._note(name, snapshot)
        return body

    def _note(self, name: str, snapshot: _Snapshot) -> None:
        """A socket of this hub is told of ``snapshot``'s members (once per snapshot)."""
        watched = self.watched.get(name)
        members = snapshot.members
        if watched is None or members is None:
            return
        if snapshot.mentioned_in is not watched:
            watched.mentioned.update(members)
            snapshot.mentioned_in = watched
        # Read and answered with no diff missed since the lists were last whole: what
        # it names, every socket here knows of.
        link = self._link()
        in_step = link is not None and snapshot.link == link == watched.link
        if in_step and snapshot.told_in is not watched:
            watched.told.update(members)
            snapshot.told_in = watched

    def _link(self) -> int | None:
        """The NATS link's reconnect count; None while it is down."""
        return self.nc.stats["reconnects"] if self.nc.is_connected else None

    async def members(self, channel: Channel) -> list[dict[str, Any]]:
        """``snapshot``, decoded."""
        members: list[dict[str, Any]] = orjson.loads(await self.snapshot(channel))["members"]
        return members

    def _read_snapshot(self, name: str) -> _Snapshot:
        """Start reading ``name``'s members from Redis for the sockets that ask now; a
        read that fails is forgotten at once."""
        read = asyncio.ensure_future(self._read_stored(name))
        snapshot = _Snapshot(self.monotonic(), self._link(), read)
        self._snapshots[name] = snapshot

        def failed(read: asyncio.Task[dict[str, bytes]]) -> None:
            if read.cancelled() or read.exception() is not None:
                self._forget_snapshot(name, snapshot)

        snapshot.read.add_done_callback(failed)
        return snapshot

    def _forget_snapshot(self, name: str, snapshot: _Snapshot | None = None) -> None:
        """The sockets that ask for ``name``'s members from now on read Redis again (the
        ones waiting for the read in flight still get it)."""
        if snapshot is None or self._snapshots.get(name) is snapshot:
            self._snapshots.pop(name, None)

    async def _read_stored(self, name: str) -> dict[str, bytes]:
        """The live entries Redis holds for ``name``: client id → info JSON."""
        now = self.clock()
        try:
            alive = await self.redis.zrangebyscore(self.keys.presence(name), now, "+inf")
            infos = (
                await self.redis.hmget(self.keys.presence_info(name), cast(list[bytes], alive))
                if alive
                else []
            )
        except (RedisError, OSError) as exc:
            outage = redis_outage(exc)
            if outage is None:
                raise
            raise unavailable(outage) from None  # the list lives only in Redis: ask again
        clients = cast(list[bytes], alive)
        return {
            _text(c): cast(bytes, info)
            for c, info in zip(clients, infos, strict=True)
            if info is not None
        }

    def _lay_over(self, name: str, stored: dict[str, bytes]) -> dict[str, bytes]:
        """What Redis holds with this hub's members of ``name`` laid over it, and its
        clients that left taken out: client id → info JSON."""
        mine = self.local.get(name, {})
        gone = self._leaving(name)
        members = {c: i for c, i in stored.items() if c not in mine and c not in gone}
        members.update(mine)
        return members

    def _leaving(self, name: str) -> set[str]:
        """This hub's clients that left ``name`` though Redis may still list them."""
        gone = set(self.unwritten.get(name, ()))
        for pending in (self.sending.get(name, {}), self.changes.get(name, {})):
            gone.update(client for client, (joined, _, _) in pending.items() if not joined)
        return gone

    # --- what this hub's sockets were told, and their resync ----------------------------

    def watch(self, name: str) -> None:
        """This hub forwards ``name``'s diffs to its sockets from now on."""
        if name not in self.watched:
            self.watched[name] = _Watched(self._link())

    def unwatch(self, name: str) -> None:
        self.watched.pop(name, None)

    def forwarded(self, name: str, joined: list[Entry], left: list[Entry]) -> None:
        """A diff this hub writes to its sockets on ``name``: a snapshot asked after it
        must not be older."""
        self._forget_snapshot(name)
        watched = self.watched.get(name)
        if watched is None:
            return
        for entry in left:
            watched.mentioned.pop(entry["client"], None)
            watched.told.discard(entry["client"])
        for entry in joined:
            watched.mentioned[entry["client"]] = entry["user"]
            watched.told.add(entry["client"])
        seen = self._resyncing.get(name)
        if seen is not None:
            seen.append((joined, left))

    async def resync(self, channel: Channel) -> bytes | None:
        """A diff that brings a socket of this hub that applied every diff it was sent
        back to the channel's members, after diffs were missed (this hub's NATS link
        was down): ``joined`` names who is present though no socket here may have been
        told (a join missed), ``left`` everyone a socket may believe present and who is
        not. Every socket on the channel is sent it, so it names only these, not the whole
        list: a member counts as known to every socket when a diff forwarded named it, or
        a snapshot taken while the link was in step did (``_Watched``). None when there
        is nothing to tell, or ``channel`` is not watched. Redis unreachable:
        ``unavailable``."""
        name = str(channel)
        link = self._link()  # the lists are whole as of this link, once this is sent
        before = self.watched.get(name)
        told = set(before.told) if before is not None else set()  # snapshots meanwhile: not
        self._resyncing[name] = []
        try:
            present: dict[str, Mention] = dict(self._lay_over(name, await self._read_stored(name)))
        finally:
            seen = self._resyncing.pop(name, [])
        watched = self.watched.get(name)
        if watched is None:
            return None
        for joined, left in seen:  # forwarded while Redis was read: they may be newer
            for entry in left:
                present.pop(entry["client"], None)
            for entry in joined:
                present[entry["client"]] = entry["user"]
                told.add(entry["client"])  # every socket here got that diff
        missed = [{"user": _user_of(m), "client": c} for c, m in present.items() if c not in told]
        gone = [
            {"user": _user_of(m), "client": c}
            for c, m in watched.mentioned.items()
            if c not in present
        ]
        watched.mentioned, watched.told, watched.link = present, set(present), link
        self._forget_snapshot(name)  # its diff goes to the sockets
        if not missed and not gone:
            return None
        return frames.push(Push.PRESENCE, channel=name, joined=missed, left=gone)

    # --- the diffs ----------------------------------------------------------------------

    async def flush(self) -> None:
        """Write the gathered changes to Redis and publish one diff per channel. Cut
        short (``stop`` cancels the ticker), it puts back what it had not published."""
        async with self._flushing:
            changes, self.changes = self.changes, {}
            if not changes:
                return
            unsent = dict(changes)
            self.sending = changes
            try:
                await self._record(changes)
                for name in changes:
                    self._forget_snapshot(name)  # Redis may hold what a read missed
                for name, diff in changes.items():
                    await self._publish(name, diff)
                    del unsent[name]
                    self._published(name, diff)
            except asyncio.CancelledError:
                self._put_back(unsent)
                raise
            finally:
                self.sending = {}

    async def _publish(self, name: str, diff: dict[str, Change]) -> None:
        """One diff, in as many pushes as NATS's ``max_payload`` needs (``_pieces``)."""
        subject = self.subjects.presence(Channel.parse(name))
        for payload in _pieces(name, diff, self.nc.max_payload - PUBLISH_HEADROOM):
            try:
                await self.nc.publish(subject, payload)
            except Exception:
                log.warning("presence diff for %s not published", name, exc_info=True)

    def _published(self, name: str, diff: dict[str, Change]) -> None:
        """The swept leaves and the returns a diff went out with are let go of by the
        next pass."""
        for claimed, acks in ((self.claimed, self.acks), (self.returned, self.returned_acks)):
            owed = claimed.get(name)
            done = {c: owed.pop(c) for c in diff if c in owed} if owed else None
            if done:
                acks.setdefault(name, {}).update(done)
            if owed is not None and not owed:
                del claimed[name]

    def _keys(self, name: str) -> list[str]:
        """``name``'s presence keys: its entries, their infos, its owed leaves and their
        claims (``SWEEP``), and this hub's returns (``RENEW``)."""
        return [
            self.keys.presence(name),
            self.keys.presence_info(name),
            self.keys.presence_swept(name),
            self.keys.presence_claims(name),
            self.keys.presence_returned(name, self.token),
        ]

    def _put_back(self, unsent: dict[str, dict[str, Change]]) -> None:
        """Changes taken out but not published, back under those gathered since (a
        client's later change still wins)."""
        for name, diff in unsent.items():
            self.changes[name] = {**diff, **self.changes.get(name, {})}
        if unsent:
            self._pending.set()

    async def _record(self, changes: dict[str, dict[str, Change]]) -> None:
        """Write the changes; leaves that could not be written are kept for the next
        renewal, those of clients Redis holds (the joins are written again by every
        renewal anyway)."""
        expiry = self.clock() + self.ttl
        leaves: dict[str, dict[str, str]] = {}  # channel → client id → user id
        joined: dict[str, list[str]] = {}  # channel → client ids
        written = False
        async with self._redis("recording joins and leaves") as ok:
            async with self.redis.pipeline(transaction=False) as pipe:
                for name, diff in changes.items():
                    entries = self.local.get(name, {})
                    joins = {
                        c: entries[c]
                        for c, (j, _, write) in diff.items()
                        if j and write and c in entries
                    }
                    leaves[name] = {
                        c: info["user"] for c, (j, info, write) in diff.items() if not j and write
                    }
                    joined[name] = list(joins)
                    presence, info, swept, claims, _ = self._keys(name)
                    if joins:
                        pipe.zadd(presence, dict.fromkeys(joins, expiry))
                        pipe.hset(info, mapping=dict(joins.items()))
                        pipe.hdel(swept, *joins)  # back: a leave still owed is news no more
                        pipe.hdel(claims, *joins)
                    if leaves[name]:
                        pipe.zrem(presence, *leaves[name])
                        pipe.hdel(info, *leaves[name])
                    if joins or leaves[name]:
                        pipe.expire(presence, self.keep_s)
                        pipe.expire(info, self.keep_s)
                await pipe.execute()
            ok()
            written = True
        for name, clients in leaves.items():
            recorded = self.recorded.get(name, set())
            if written:
                recorded.update(joined[name])
                recorded.difference_update(clients)
            else:  # Redis unreachable: written at a renewal, if Redis holds them
                local = self.local.get(name, {})
                gone = {c: u for c, u in clients.items() if c not in local and c in recorded}
                recorded.difference_update(clients)
                if gone:
                    self.unwritten.setdefault(name, {}).update(gone)
            if recorded:
                self.recorded[name] = recorded
            else:
                self.recorded.pop(name, None)

    @contextlib.asynccontextmanager
    async def _redis(self, doing: str) -> AsyncIterator[Callable[[], None]]:
        """Fail open: a Redis error is logged when Redis goes away and when it is back,
        not per call; the caller carries on without it."""

        def ok() -> None:
            if not self.redis_ok:
                self.redis_ok = True
                log.info("presence: Redis is back")

        try:
            yield ok
        except (RedisError, OSError) as exc:
            if self.redis_ok:
                self.redis_ok = False
                log.warning("presence: Redis unreachable (%s while %s); carrying on", exc, doing)

    # --- background: the diff ticker and the heartbeat ------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._ticker(), name="presence-diffs"),
            asyncio.create_task(self._heartbeat(), name="presence-heartbeat"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._refused_log.flush()  # a count still waiting for its line is told now
        with contextlib.suppress(Exception):
            async with asyncio.timeout(STOP_FLUSH_S):
                await self.flush()  # the leaves of the sockets that just closed

    async def _ticker(self) -> None:
        while True:
            await self._pending.wait()
            await asyncio.sleep(self.tick)  # gather the rest of this tick's changes
            self._pending.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("presence diff failed")

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.renew_and_sweep()
            except Exception:
                log.exception("presence heartbeat failed")

    async def renew_and_sweep(self, channel_of: Callable[[str], Channel] = Channel.parse) -> None:
        """Renew this hub's entries (announcing those found gone as joined again), write
        the leaves Redis missed, and sweep the expired entries of every channel this hub
        has members on, announcing them as left. ``RENEW_BATCH`` channels at a time, in
        one pipeline, each batch's expiry counted from its own start: a pass over many
        channels takes a few round trips, not two per channel, and no entry is renewed
        with a time the pass has long left behind (it would expire early, to be swept
        and announced left, then joined again)."""
        now = self.monotonic()
        for name, snapshot in list(self._snapshots.items()):  # no one asked for a while
            if now - snapshot.at >= self.tick:
                self._forget_snapshot(name, snapshot)
        # Those with members here, leaves owed to Redis or swept leaves to let go of or
        # to be handed again.
        names = list(
            dict.fromkeys(
                [*self.local, *self.unwritten, *self.resweep, *self.acks, *self.returned_acks]
            )
        )
        async with self._redis("renewing entries") as ok:
            for first in range(0, len(names), RENEW_BATCH):
                await self._renew_batch(names[first : first + RENEW_BATCH], channel_of)
            ok()

    async def _renew_batch(self, names: list[str], channel_of: Callable[[str], Channel]) -> None:
        now = self.clock()
        # This batch's mark on what it hands over: its returns' stamp, and its claims
        # (this hub's token, the batch, the deadline). Unique, however the clock goes: an
        # ack lets go only of the very return or leave this hub announced.
        self.passes += 1
        stamp = str(self.passes)
        claim = f"{self.token}:{stamp} {now + self.ttl!r}"
        done: list[tuple[str, str]] = []  # (what, channel) of each command, in order
        unwritten: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
        renewed: dict[str, list[str]] = {}  # channel → the clients it renewed
        acking: dict[str, dict[str, str]] = {}  # channel → the swept leaves it lets go of
        returns: dict[str, dict[str, str]] = {}  # channel → the returns it lets go of
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                keys = self._keys(name)
                leaves = self.unwritten.get(name)
                if leaves:
                    unwritten[name] = (leaves, dict(leaves))
                    pipe.zrem(keys[0], *leaves)
                    pipe.hdel(keys[1], *leaves)
                    done += [("", name), ("", name)]
                returns[name] = dict(self.returned_acks.get(name, {}))
                entries = self.local.get(name)
                if entries or returns[name]:
                    # Re-add, not just renew: a late renewal may follow another hub's sweep.
                    args: list[bytes | str | float | int] = [now + self.ttl, now, self.keep_s]
                    args += [stamp, len(returns[name]), *_pairs(returns[name])]
                    for client, entry in (entries or {}).items():
                        args += [client, entry]
                    await self._renew(keys=keys, args=args, client=pipe)
                    done.append(("renewed", name))
                    if entries:
                        renewed[name] = list(entries)
                acking[name] = dict(self.acks.get(name, {}))
                sweep: list[bytes | str | float | int] = [now, self.keep_s, self.token, claim]
                await self._sweep(keys=keys, args=[*sweep, *_pairs(acking[name])], client=pipe)
                done.append(("swept", name))
            # A command Redis refuses fails its channel alone (``_refused``); one that
            # never got an answer (the link) raises: an outage, for the whole pass. Its
            # renewals and sweeps may have run: what they found is handed over again by
            # the next ones (this hub's returns, the channel's owed leaves: ``resweep``).
            self.resweep.update(names)
            results = await pipe.execute(raise_on_error=False)
        refused: dict[str, ResponseError] = {}
        for (_, name), result in zip(done, results, strict=True):
            if isinstance(result, ResponseError):
                refused.setdefault(name, result)
            elif isinstance(result, Exception):
                raise result
        for name, (leaves, written) in unwritten.items():
            if name not in refused:  # else still owed, for the next pass
                self._wrote_unwritten(name, leaves, written)
        for name, clients in renewed.items():
            local = self.local.get(name, {})
            still = [c for c in clients if c in local]  # not those that left meanwhile
            if still and name not in refused:
                self.recorded.setdefault(name, set()).update(still)
        for (what, name), result in zip(done, results, strict=True):
            if isinstance(result, ResponseError):
                continue
            if what == "renewed":
                self._renewed(name, returns[name], result)
            elif what == "swept":
                self._swept(name, str(channel_of(name)), acking[name], result)
        for name, error in refused.items():
            self.resweep.discard(name)  # not run: tried again while it has members here
            self._refused(name, error)

    def _swept(
        self, name: str, channel: str, acked: dict[str, str], handed: list[bytes] | None
    ) -> None:
        """A sweep of ``name`` ran and its reply came: the leaves it let go of are done
        with, and those it handed this hub (already removed from the channel's entries:
        announce only) are announced, but for those on their way already (the same
        claim: a leave of the client owed anew has a claim of its own)."""
        self.resweep.discard(name)
        _let_go(self.acks, name, acked)
        for raw, raw_claim in _paired(handed or []):
            info = orjson.loads(raw)
            client, claim = str(info["client"]), _text(raw_claim)
            if claim in (
                self.claimed.get(channel, {}).get(client),
                self.acks.get(channel, {}).get(client),
            ):
                continue  # handed again before this hub let go of it: announced once
            self.claimed.setdefault(channel, {})[client] = claim
            gone = {"user": str(info["user"]), "client": client}
            self._change(channel, client, (False, gone, False))

    def _refused(self, name: str, error: ResponseError) -> None:
        """Redis refused a renewal pass's command on ``name`` (a key of the wrong type, a
        script refused for lack of memory): what it did for the other channels stands,
        and ``name``'s renewal, sweep and owed leaves are tried again by the next pass.
        Logged at most once per ``REFUSED_LOG_S`` (every pass may be refused again)."""

        def line(count: int) -> None:
            log.warning(
                "presence: Redis refused renewing %s (%s); tried again next pass "
                "(%d refused channel renewal(s) since the last such line)",
                name,
                error,
                count,
            )

        self._refused_log.add(line)

    def _wrote_unwritten(self, name: str, leaves: dict[str, str], written: dict[str, str]) -> None:
        """The leaves Redis missed are written: announce them again. Their first diff
        went out while Redis still listed them, so a snapshot taken since (on any hub)
        may list them, and a repeated ``left`` is harmless."""
        self._forget_snapshot(name)
        for client, user in written.items():
            leaves.pop(client, None)  # a client may have joined again meanwhile
            if any(client in c.get(name, {}) for c in (self.local, self.changes, self.sending)):
                continue  # back, or a change of its own is on its way
            self._change(name, client, (False, {"user": user, "client": client}, False))
        if not leaves and self.unwritten.get(name) is leaves:  # not a newer one's
            del self.unwritten[name]

    def _renewed(self, name: str, acked: dict[str, str], back: list[bytes] | None) -> None:
        """A renewal of ``name`` ran and its reply came: the returns it let go of are done
        with, and this hub's returns (the clients a renewal found gone, this one or one
        whose reply was lost) are announced joined (already written again: announce
        only), but for those on their way already (the same stamp: a client found gone
        anew has a stamp of its own); those that left meanwhile, or have a change of
        their own on its way, are let go of."""
        _let_go(self.returned_acks, name, acked)
        for raw, raw_stamp in _paired(back or []):
            client, stamp = _text(raw), _text(raw_stamp)
            if stamp in (
                self.returned.get(name, {}).get(client),
                self.returned_acks.get(name, {}).get(client),
            ):
                continue  # returned again before this hub let go of it: announced once
            info = self.local.get(name, {}).get(client)
            if info is None or any(client in c.get(name, {}) for c in (self.changes, self.sending)):
                # Left meanwhile, or a change of its own is on its way: that is the news.
                self.returned_acks.setdefault(name, {})[client] = stamp
                continue
            self.returned.setdefault(name, {})[client] = stamp
            user = str(orjson.loads(info)["user"])
            self._change(name, client, (True, {"user": user, "client": client}, False))


def _pairs(marks: dict[str, str]) -> list[str]:
    """``marks`` as a script's arguments: client, mark, client, mark…"""
    return [item for pair in marks.items() for item in pair]


def _paired(flat: list[bytes]) -> list[tuple[bytes, bytes]]:
    """A script's reply of pairs (a, b, a, b…), paired."""
    return list(zip(flat[::2], flat[1::2], strict=True))


def _let_go(owed: dict[str, dict[str, str]], name: str, done: dict[str, str]) -> None:
    """Take ``done`` out of ``owed``'s ``name`` (the pass let go of them in Redis): each
    client only while its mark is the one let go of — a newer one is still owed."""
    left = owed.get(name)
    if left is not None:
        for client, mark in done.items():
            if left.get(client) == mark:
                del left[client]
        if not left:
            del owed[name]
