"""A feed's tail: the publications it passed on last, kept to answer resubscribes.

A client that reconnects after a short break resubscribes with ``since``, the offset of
the last publication it saw. A feed that kept listening meanwhile (other sockets of the
hub are subscribed) has passed on everything the client missed, so the reply can come
from memory: no JetStream read, nothing for NATS to send the hub. Under a reconnect
storm that is what keeps a saturated hub from falling behind its NATS connection (each
read from history is two requests and a message per publication, and a hub more than
the server's ``max_pending`` behind is cut as a slow consumer).

A tail vouches for a range: it holds every publication of its channel with an offset
above ``start``, up to the last one it took (the feed's ``last_offset``). A feed passes
publications on in offset order and fills any gap from history before it goes on
(``fanout.py``), so what it adds is complete; a gap it cannot fill resets the tail,
which then vouches only for what comes after it. Offsets are stream sequences shared by
the channels of a kind, so completeness cannot be read from the offsets themselves.

A tail keeps no more than its channel's history would (the policy's
``history_max_msgs`` and ``history_max_age_s``), at most ``TAIL_MAX_ITEMS`` and
``TAIL_MAX_BYTES``; and all the tails of a hub share one byte budget
(``HUBBUB_WS_RECOVERY_TAIL_BYTES``). Dropping the oldest publication moves ``start`` up
to it: a ``since`` older than that is read from history, as before.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

TAIL_MAX_ITEMS = 1_000  # publications one feed keeps, at most
TAIL_MAX_BYTES = 1024 * 1024  # and their data's size


class TailBudget:
    """The bytes of publication data all the tails of one hub may keep together."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0


class Tail:
    __slots__ = ("_budget", "_clock", "_items", "_size", "max_age_s", "max_items", "start")

    def __init__(
        self,
        budget: TailBudget,
        *,
        max_items: int,
        max_age_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``max_items`` < 0 and ``max_age_s`` <= 0 mean no limit of the channel's own
        (as they do for a JetStream stream); ``TAIL_MAX_ITEMS`` still applies."""
        self._budget = budget
        self._clock = clock
        self.max_items = TAIL_MAX_ITEMS if max_items < 0 else min(max_items, TAIL_MAX_ITEMS)
        self.max_age_s = max_age_s
        # (offset, data, when it was added), oldest first; made with the first one (an
        # empty deque is 0.76 KiB, and a hub may have a feed per user).
        self._items: deque[tuple[int, bytes, float]] | None = None
        self._size = 0  # bytes of data held
        # Every publication above this offset, up to the last one added, is held. None:
        # the tail vouches for nothing yet.
        self.start: int | None = None

    def __len__(self) -> int:
        return 0 if self._items is None else len(self._items)

    def begin(self, offset: int) -> None:
        """Vouch from ``offset``: what the feed knows is the channel's last offset, and
        everything after it will be added. Ignored once the tail vouches for a range."""
        if self.start is None:
            self.start = offset

    def add(self, offset: int, data: bytes) -> None:
        """The feed passed on the publication at ``offset``, the next one of its
        channel after the last one added (or after ``begin``'s offset)."""
        if self.start is None:
            # Nothing known before it: vouch from here (the publication itself is not
            # covered; the feed's first one, or its first after a gap).
            self.start = offset
        size = len(data)
        now = self._clock()
        items = self._items
        if items is None:
            items = self._items = deque()
        items.append((offset, data, now))
        self._size += size
        budget = self._budget
        budget.used += size
        if len(items) > self.max_items or self._size > TAIL_MAX_BYTES or budget.used > budget.limit:
            self._shrink()
        if self.max_age_s > 0 and items and items[0][2] < now - self.max_age_s:
            self._drop_older_than(now - self.max_age_s)

    def after(self, offset: int) -> list[tuple[int, bytes]] | None:
        """Every publication held above ``offset``, in order; None when the tail cannot
        vouch for them all (``offset`` is below its range)."""
        if self.max_age_s > 0:
            self._drop_older_than(self._clock() - self.max_age_s)
        if self.start is None or offset < self.start:
            return None
        found: list[tuple[int, bytes]] = []
        for item_offset, data, _ in reversed(self._items or ()):
            if item_offset <= offset:
                break
            found.append((item_offset, data))
        found.reverse()
        return found

    def reset(self) -> None:
        """The feed skipped publications it could not fetch again: vouch for nothing
        until the next one added."""
        self.clear()
        self.start = None

    def clear(self) -> None:
        """Let go of every publication held (its bytes go back to the budget); the range
        starts above the last one."""
        if self._items:
            self.start = self._items[-1][0]
        self._budget.used -= self._size
        self._size = 0
        self._items = None

    def _shrink(self) -> None:
        """Drop the oldest until within every limit (all of them, when the hub's budget
        is spent by other tails)."""
        items = self._items
        budget = self._budget
        while items and (
            len(items) > self.max_items or self._size > TAIL_MAX_BYTES or budget.used > budget.limit
        ):
            self._drop_oldest()

    def _drop_older_than(self, cutoff: float) -> None:
        items = self._items
        while items and items[0][2] < cutoff:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        assert self._items is not None
        offset, data, _ = self._items.popleft()
        self.start = offset  # everything after it is still held
        self._size -= len(data)
        self._budget.used -= len(data)
