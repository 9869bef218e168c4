"""Channel history in JetStream: the last offset, what came after an offset, the epoch.

Reads use JetStream's Direct Get (any replica answers, no consumer state). On servers
that support it (NATS ≥ 2.11) the publications after an offset come back in one batched
request; older servers get one request per publication.

A batch's replies are plain messages to an inbox, so a NATS reconnect in the middle of
one loses some of them while the server goes on sending the rest to the same inbox.
Each reply names the sequence of the one before it (``Nats-Last-Sequence``; the first
names 0, the end-of-batch marker the last): a read whose chain breaks has lost replies
and fails as ``Unavailable``, never returning a list with a hole in it (a hub that
falls behind its NATS connection by more than the server's ``max_pending`` is cut as a
slow consumer, e.g. under a reconnect storm's recoveries on a saturated host). So that
recoveries alone cannot do that, at most ``BATCHES_AT_ONCE`` batches are read at once,
each of at most ``max_bytes`` (4 MiB for a recovery): the others wait their turn, and a
read that is no longer wanted when its turn comes (``still_wanted``: its socket closed
meanwhile) is not made. Most recoveries never come here: a feed answers a recent
``since`` from its tail (``tail.py``).

What retention drops is read from the stream's state: JetStream's limits of age and
size drop the kind's oldest publications first (its ``first_seq`` rises past them), and
a channel's own limit drops that channel's oldest while it keeps as many as the limit.
So the history has kept everything a channel published after an offset while its first
offset is at most one past it and the channel keeps fewer than its limit after it
(``kept_after``); and a channel none of whose publications is kept published nothing
after ``first_seq`` - 1 (``empty_channel``). A publication deleted by hand from the
middle (a subject purged, a message removed) is not seen. Stream state comes from the
stream's leader (stream info), at most ``STATE_READS_AT_ONCE`` reads at once; what only
grows (the first offset of an epoch) is remembered, to answer a "dropped" without
asking. A "kept", a "reaches" or a "still of this epoch" is answered by a read started
after it was asked: the stream may have been recreated since (a new epoch), which only
a later read shows. The questions of a kind share their reads: those asked while one is
under way wait for the next, which starts when it ends, so a reconnect storm costs one
read under way per kind and one waiting to start (``_state_after_asked``). The epoch is read apart
from those (every subscribe of a reconnect storm needs it first): one read per kind at
a time, shared by the callers that wait for it.

Stored data is checked as live delivery checks it (``hub/ws/fanout.py``): only JSON
objects reach clients. A backend that published anything else is logged and skipped,
because history replies splice the stored bytes into the frame unparsed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import StreamInfo

from hubbub.contracts.channels import Channel, ChannelKind
from hubbub.contracts.errors import Unavailable
from hubbub.contracts.subjects import Subjects

EPOCH_TTL_S = 30.0
# Batched reads in flight at once: with 4 MiB each, half of NATS's default max_pending
# (64 MiB) for the replies the hub has yet to read.
BATCHES_AT_ONCE = 8
# Stream info requests (JetStream API, answered by the stream's leader) in flight at once.
STATE_READS_AT_ONCE = 16
log = logging.getLogger(__name__)


def _is_object(offset: int, data: bytes, subject: str) -> bool:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        return True
    log.error("stored publication %s on %s is not a JSON object; skipped", offset, subject)
    return False


def _epoch_of(info: StreamInfo) -> str:
    """The history epoch of a kind's stream: when it was created."""
    created = info.created
    return str(int(created.timestamp() * 1_000_000)) if created is not None else "0"


@dataclass(frozen=True, slots=True)
class Publication:
    offset: int
    data: bytes  # JSON


class Publications(list[Publication]):
    """Publications read from history, in order. ``read``: how many of the channel's
    were read, those skipped as no JSON object included (what its own limit counts)."""

    def __init__(self) -> None:
        super().__init__()
        self.read = 0


class History:
    def __init__(self, nc: NATS, subjects: Subjects, *, timeout: float = 10.0) -> None:
        self.nc = nc
        self.subjects = subjects
        self.timeout = timeout
        self._epochs: dict[ChannelKind, tuple[str, float]] = {}
        # The epoch read under way per kind, shared by the callers that wait for it.
        self._epoch_reads: dict[ChannelKind, asyncio.Future[str]] = {}
        self._batches = asyncio.Semaphore(BATCHES_AT_ONCE)
        self._state_reads = asyncio.Semaphore(STATE_READS_AT_ONCE)
        # Per kind, (epoch, the highest first offset its stream was seen with): it only
        # grows within an epoch.
        self._fronts: dict[ChannelKind, tuple[str, int]] = {}
        # Per kind, the stream-state read that callers asking now wait for (not started
        # while another is under way), and the one under way.
        self._next_state_reads: dict[ChannelKind, asyncio.Future[StreamInfo]] = {}
        self._state_reads_under_way: dict[ChannelKind, asyncio.Task[StreamInfo]] = {}

    @property
    def batching(self) -> bool:
        version = self.nc.connected_server_version
        return (version.major, version.minor) >= (2, 11)

    def _api(self, kind: ChannelKind) -> str:
        return f"$JS.API.DIRECT.GET.{self.subjects.stream(kind)}"

    async def _get(self, kind: ChannelKind, request: dict[str, object]) -> Msg | None:
        try:
            msg = await self.nc.request(
                self._api(kind), orjson.dumps(request), timeout=self.timeout
            )
        except Exception as exc:
            raise Unavailable(f"channel history is unavailable: {type(exc).__name__}") from None
        status = (msg.headers or {}).get("Status")
        if status == "404":
            return None
        if status is not None:
            raise Unavailable(f"channel history answered {status}")
        return msg

    async def epoch(self, kind: ChannelKind, *, fresh: bool = False) -> str:
        """Changes only when the channel kind's history is reset (its stream recreated).
        Remembered for ``EPOCH_TTL_S`` from the last read of the stream's state (any
        of them); ``fresh``: asked of the stream now. Callers that find it to be read
        join the read under way (a ``fresh`` one starts its own); not bounded by
        ``STATE_READS_AT_ONCE``: one shared read per kind at a time, plus the ``fresh``
        ones (the fan-out's epoch checks: one every few seconds, and one after a
        reconnect)."""
        cached = self._epochs.get(kind)
        if cached is not None and not fresh and time.monotonic() - cached[1] < EPOCH_TTL_S:
            return cached[0]
        reading = None if fresh else self._epoch_reads.get(kind)
        if reading is None:
            reading = asyncio.ensure_future(self._read_epoch(kind))
            self._epoch_reads[kind] = reading
            reading.add_done_callback(lambda done: self._epoch_read(kind, done))
        return await asyncio.shield(reading)

    async def _read_epoch(self, kind: ChannelKind) -> str:
        return _epoch_of(await self._read_stream_info(kind))

    def _epoch_read(self, kind: ChannelKind, reading: asyncio.Future[str]) -> None:
        if self._epoch_reads.get(kind) is reading:
            del self._epoch_reads[kind]
        if not reading.cancelled():
            reading.exception()  # retrieved: each waiter has it raised

    async def _stream_info(self, kind: ChannelKind, subject: str | None = None) -> StreamInfo:
        """The kind's stream state from its leader (with ``subject``'s count of kept
        publications, when given), at most ``STATE_READS_AT_ONCE`` reads at once."""
        async with self._state_reads:
            return await self._read_stream_info(kind, subject)

    async def _read_stream_info(self, kind: ChannelKind, subject: str | None = None) -> StreamInfo:
        """The kind's stream state; its epoch and first offset are remembered."""
        asked = time.monotonic()
        try:
            info = await self.nc.jetstream().stream_info(
                self.subjects.stream(kind), subjects_filter=subject
            )
        except Exception as exc:
            raise Unavailable(f"channel history is unavailable: {type(exc).__name__}") from None
        epoch = _epoch_of(info)
        cached = self._epochs.get(kind)
        if cached is None or cached[1] <= asked:  # not over a later read's answer
            self._epochs[kind] = (epoch, asked)
        known = self._fronts.get(kind)
        if known is None or known[0] != epoch or known[1] < info.state.first_seq:
            self._fronts[kind] = (epoch, info.state.first_seq)
        return info

    async def _state_after_asked(self, kind: ChannelKind) -> StreamInfo:
        """The kind's stream state, read by a request made after this call: shared with
        the other callers that ask before it starts. One is under way at a time per
        kind; callers that ask meanwhile wait for the next, made when it ends."""
        answer = self._next_state_reads.get(kind)
        if answer is None:
            answer = asyncio.get_running_loop().create_future()
            self._next_state_reads[kind] = answer
            if kind not in self._state_reads_under_way:
                self._start_state_read(kind)
        return await asyncio.shield(answer)

    def _start_state_read(self, kind: ChannelKind) -> None:
        answer = self._next_state_reads.pop(kind)
        reading = asyncio.ensure_future(self._stream_info(kind))
        self._state_reads_under_way[kind] = reading

        def done(reading: asyncio.Task[StreamInfo]) -> None:
            del self._state_reads_under_way[kind]
            if reading.cancelled():
                error: BaseException | None = Unavailable("channel history read was cancelled")
            else:
                error = reading.exception()
            if error is None:
                answer.set_result(reading.result())
            else:
                answer.set_exception(error)
                answer.exception()  # retrieved: each waiter has it raised; none may be left
            if kind in self._next_state_reads:
                self._start_state_read(kind)

        reading.add_done_callback(done)

    async def is_current(self, kind: ChannelKind, epoch: str) -> bool:
        """Is the kind's history still of ``epoch``, asked after this call? What was
        read of it before the call was read from that history (an epoch is the time
        its stream was created)."""
        return _epoch_of(await self._state_after_asked(kind)) == epoch

    @staticmethod
    def _known(
        seen: dict[ChannelKind, tuple[str, int]], kind: ChannelKind, epoch: str
    ) -> int | None:
        known = seen.get(kind)
        return known[1] if known is not None and known[0] == epoch else None

    async def empty_channel(self, channel: Channel, epoch: str) -> tuple[int, int] | None:
        """When the kind's history, of ``epoch``, keeps none of ``channel``'s
        publications: its (first, last) offsets, read in one go from the stream's leader.
        Then the channel published nothing after first - 1 (what retention drops goes
        oldest first, so nothing of it at or after ``first`` was dropped) up to ``last``.
        None when it keeps some, or the history is of another epoch."""
        subject = self.subjects.event(channel)
        info = await self._stream_info(channel.kind, subject)
        state = info.state
        if _epoch_of(info) != epoch or (state.subjects or {}).get(subject):
            return None
        return state.first_seq, state.last_seq

    async def kept_after(self, kind: ChannelKind, epoch: str, offset: int) -> int | None:
        """Has the kind's history, of ``epoch``, kept everything published after
        ``offset``, as far as its limits of age and size go? They drop the oldest first,
        so it has while its first offset is at most ``offset`` + 1. None when it has not
        (or may not have); else how many publications it keeps per channel (the
        stream's ``max_msgs_per_subject``, -1 or 0 for no limit), for the caller to
        check the channel's own limit. A first offset seen before that is past
        ``offset`` already answers None without asking (it only grows); a yes is read
        after the call (``_state_after_asked``)."""
        front = self._known(self._fronts, kind, epoch)
        if front is not None and front > offset + 1:
            return None
        info = await self._state_after_asked(kind)
        if _epoch_of(info) != epoch or info.state.first_seq > offset + 1:
            return None
        limit = info.config.max_msgs_per_subject
        return -1 if limit is None else limit

    async def reaches(self, kind: ChannelKind, epoch: str, offset: int) -> bool:
        """Has the kind's history, of ``epoch``, come as far as ``offset``? Read after
        the call (``_state_after_asked``): a stream recreated since has another epoch,
        and an offset of the old one may be past the new one's last (a yes would skip
        the new one's publications up to it). A read that finds another epoch leaves it
        for ``epoch`` to answer."""
        info = await self._state_after_asked(kind)
        return _epoch_of(info) == epoch and info.state.last_seq >= offset

    async def last_offset(self, channel: Channel) -> int:
        msg = await self._get(channel.kind, {"last_by_subj": self.subjects.event(channel)})
        return 0 if msg is None else int((msg.headers or {})["Nats-Sequence"])

    async def holds(self, channel: Channel, offset: int) -> bool:
        """Is the publication at ``offset`` of this channel still kept? Retention drops the
        oldest first, so if it is, everything after it is too. Of whichever history the
        stream holds now: ``is_current`` tells whether that is the one meant."""
        msg = await self._get(channel.kind, {"seq": offset})
        return msg is not None and (msg.headers or {}).get("Nats-Subject") == self.subjects.event(
            channel
        )

    async def after(
        self,
        channel: Channel,
        offset: int,
        limit: int,
        max_bytes: int = 4 * 1024 * 1024,
        *,
        still_wanted: Callable[[], bool] | None = None,
    ) -> Publications:
        """Publications of ``channel`` after ``offset``, in order: at most ``limit`` of
        them, and no more once their data adds up to ``max_bytes``. A batched read
        waits for its turn (``BATCHES_AT_ONCE``); if ``still_wanted`` then says no, it
        is not made and the answer is empty."""
        if limit <= 0:
            return Publications()
        if self.batching:
            async with self._batches:
                if still_wanted is not None and not still_wanted():
                    return Publications()
                return await self._read_batch(channel, offset, limit, max_bytes)
        found = Publications()
        size = 0
        subject = self.subjects.event(channel)
        while len(found) < limit and size < max_bytes:
            msg = await self._get(channel.kind, {"seq": offset + 1, "next_by_subj": subject})
            if msg is None:
                break
            offset = int((msg.headers or {})["Nats-Sequence"])
            found.read += 1
            if _is_object(offset, msg.data, subject):
                found.append(Publication(offset, msg.data))
                size += len(msg.data)
        return found

    async def _read_batch(
        self, channel: Channel, offset: int, limit: int, max_bytes: int
    ) -> Publications:
        inbox = self.nc.new_inbox()
        queue: asyncio.Queue[Msg] = asyncio.Queue()
        sub = await self.nc.subscribe(inbox, cb=queue.put)
        found = Publications()
        try:
            request = {
                "seq": offset + 1,
                "next_by_subj": self.subjects.event(channel),
                "batch": limit,
                "max_bytes": max_bytes,
            }
            await self.nc.publish(self._api(channel.kind), orjson.dumps(request), reply=inbox)
            previous = 0  # the sequence of the last reply of this batch so far
            async with asyncio.timeout(self.timeout):
                while True:
                    msg = await queue.get()
                    headers = msg.headers or {}
                    status = headers.get("Status")
                    if status is not None and status not in ("404", "204"):
                        raise Unavailable(f"channel history answered {status}")
                    if int(headers.get("Nats-Last-Sequence") or previous) != previous:
                        raise Unavailable("a channel history read lost replies; try again")
                    if status is not None:  # nothing more / end of batch
                        break
                    offset = previous = int(headers["Nats-Sequence"])
                    found.read += 1
                    if _is_object(offset, msg.data, headers.get("Nats-Subject", "?")):
                        found.append(Publication(offset, msg.data))
                    if len(found) >= limit:
                        break
        except TimeoutError:
            raise Unavailable("channel history did not answer in time") from None
        finally:
            await sub.unsubscribe()
        return found
