"""How far this hub's channel feeds lag behind JetStream, read at scrape time.

A hub gets each channel's publications from the stream's republish on ``live.*``, which
is at-most-once: a publication lost on the way (a NATS reconnect, a slow hub's
subscription overflowing) is noticed by the feed only when the channel's next one
arrives, and a channel that goes quiet after the loss leaves its subscribers behind
until then. That is this hub's consumer lag, and what is measured:

* ``hubbub_jetstream_feeds_behind`` — feeds (channels with subscribers here) whose
  last offset was, at their latest check, older than a publication the stream already
  held at their previous check (a scrape ago or more): one still in flight at a check
  counts only if it has not arrived by the next, so a busy channel is not "behind". Each
  feed's verdict is kept until its next check (or its release), so a scrape that skips
  a lagging feed still counts it and the alert's ``for`` holds;
* ``hubbub_jetstream_feeds_checked`` — how many feeds this scrape looked at: at most
  ``SAMPLE`` a scrape, taking turns, so a hub with many channels costs each scrape a
  bounded number of Direct Gets (one per feed: the channel's last offset);
* ``hubbub_jetstream_up`` — 1 when the check could ask JetStream, 0 when it could not
  (the two series above are then left out, not 0).

The whole check has ``TIMEOUT_S``; NATS away ends it with a debug line, no traceback.
The stream side (messages, last sequences, consumers' pending counts) is reported by
the workers (workers/metrics.py): the hub's NATS user may not list consumers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from hub.ws.service import Realtime

log = logging.getLogger("hubbub.hub")

SAMPLE = 100  # feeds checked a scrape at most
TIMEOUT_S = 2.0  # for one scrape's check, all its Direct Gets together


class FeedLag:
    def __init__(self) -> None:
        self.behind: int | None = None  # None: the last check could not ask JetStream
        self.checked = 0
        self._seen: dict[str, int] = {}  # feed name → the stream's last offset at its check
        self._behind: set[str] = set()  # feeds found behind at their latest check
        self._turn = 0  # where the next sample starts

    async def refresh(self, realtime: Realtime | None) -> None:
        if realtime is None:
            self.behind, self.checked = None, 0
            return
        feeds = list(realtime.fanout.feeds.values())
        names = {feed.name for feed in feeds}
        for name in [name for name in self._seen if name not in names]:
            del self._seen[name]  # unsubscribed since: its next feed starts afresh
            self._behind.discard(name)
        if not feeds:
            self.behind, self.checked = 0, 0
            return
        start = self._turn % len(feeds)
        sample = (feeds[start:] + feeds[:start])[:SAMPLE]
        self._turn = start + len(sample)
        history = realtime.fanout.history
        try:
            async with asyncio.timeout(TIMEOUT_S):
                lasts = await asyncio.gather(*(history.last_offset(f.channel) for f in sample))
        except Exception as exc:  # NATS away, JetStream slow: no figure this time
            log.debug("feed lag unknown: %s: %s", type(exc).__name__, exc)
            self.behind, self.checked = None, 0
            return
        for feed, last in zip(sample, lasts, strict=True):
            have = feed.position
            previous = self._seen.get(feed.name)
            if previous is not None and have is not None and have < previous:
                self._behind.add(feed.name)
            else:
                self._behind.discard(feed.name)
            self._seen[feed.name] = last
        self.behind, self.checked = len(self._behind), len(sample)

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "hubbub_jetstream_up",
            "Whether this hub's last scrape could ask JetStream (1) or not (0).",
            value=0.0 if self.behind is None else 1.0,
        )
        if self.behind is None:
            return
        yield GaugeMetricFamily(
            "hubbub_jetstream_feeds_behind",
            "Channel feeds of this hub that, at their latest check, still missed a "
            "publication the stream held at their previous check.",
            value=self.behind,
        )
        yield GaugeMetricFamily(
            "hubbub_jetstream_feeds_checked",
            "Channel feeds this scrape compared with the stream (at most 100, in turns).",
            value=self.checked,
        )
