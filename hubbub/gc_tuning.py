"""Garbage-collector settings for long-running Hubbub processes (hubs and workers).

Every request allocates short-lived containers (envelopes, pydantic models, coroutine
frames); almost all of them die by reference counting, yet each 700 allocations
CPython's default triggers a young-generation collection that walks whatever is alive.
On the request path those pauses are what a profile shows between the syscalls:
measured on this project's bus benchmark, the requester's collections added ~20 µs to a
~300 µs round trip. So: objects that exist once start-up is over are frozen out of every
scan, and collections run far less often than CPython's default. Cycles are still
collected; memory held by garbage cycles between collections stays small.

``REQUESTS`` (workers): young collections every 50,000 allocations, CPython's own
spacing of middle and full ones (10 and 10).

``SOCKETS`` (hubs): a hub's sockets are its other load. Each open socket keeps ~60
tracked objects (the handler task and its coroutines, aiohttp's request, protocol,
parser, reader, writer), and each of them is walked once by a young collection and once
by a middle one before it reaches the oldest generation. The young walk is cheapest
while those objects are still in the CPU's caches, i.e. when young collections come
every few thousand allocations rather than every few tens of thousands (a young
collection of 50,000 socket objects touches ~10 MB, long evicted since their
allocation); and the middle walk likewise, when it comes every other young collection
(middle threshold 0: as soon as one young collection has added to the middle
generation), so it walks the survivors of one young collection, still warm, rather than
of many. Full collections stay as far apart as with ``REQUESTS``: at least 500 middle
collections between two (besides CPython's own rule: a quarter more long-lived objects
since the last one), i.e. at least 5,000,000 allocations.
"""

from __future__ import annotations

import gc

# (young, middle, oldest) thresholds: the module's docstring says why each.
REQUESTS = (50_000, 10, 10)
SOCKETS = (5_000, 0, 500)


def tune_gc(thresholds: tuple[int, int, int] = REQUESTS) -> None:
    """Call once start-up is done: freeze what exists, set the generations' thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
