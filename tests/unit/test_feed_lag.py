"""``hubbub_jetstream_feeds_behind`` on a hub with more feeds than one scrape checks:
each scrape looks at ``SAMPLE`` of them in turns, and the gauge still counts every feed
found behind at its last check, so HubbubJetStreamLag's ``for`` is not reset by the
scrapes that skip a lagging feed. Feeds and the stream's last offsets are stand-ins:
what is tested is the counting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from hub.metrics_jetstream import SAMPLE, FeedLag


@dataclass
class Feed:
    name: str
    position: int | None

    @property
    def channel(self) -> str:
        return self.name


@dataclass
class History:
    lasts: dict[str, int] = field(default_factory=dict)

    async def last_offset(self, channel: str) -> int:
        return self.lasts[channel]


@dataclass
class Fanout:
    feeds: dict[str, Feed]
    history: History


@dataclass
class Hub:
    fanout: Fanout


def hub_with(feeds: int, *, behind: set[str]) -> Hub:
    """``feeds`` feeds of channels whose stream holds offset 5; those in ``behind``
    have 4 (they lost the last publication)."""
    names = [f"c{i}" for i in range(feeds)]
    return Hub(
        Fanout(
            {name: Feed(name, 4 if name in behind else 5) for name in names},
            History(dict.fromkeys(names, 5)),
        )
    )


async def scrapes(lag: FeedLag, hub: Hub, count: int) -> list[int | None]:
    seen: list[int | None] = []
    for _ in range(count):
        await lag.refresh(cast(Any, hub))
        seen.append(lag.behind)
    return seen


async def test_a_lagging_feed_is_counted_on_every_scrape_not_only_those_that_check_it() -> None:
    feeds = 250
    assert feeds > 2 * SAMPLE  # three scrapes for a full turn
    hub = hub_with(feeds, behind={"c0"})
    lag = FeedLag()
    # Each feed's first check only notes the stream's last offset; its second judges.
    await scrapes(lag, hub, 2 * -(-feeds // SAMPLE))

    assert await scrapes(lag, hub, 12) == [1] * 12


async def test_a_feed_that_caught_up_or_was_released_is_no_longer_counted() -> None:
    hub = hub_with(250, behind={"c0", "c1"})
    lag = FeedLag()
    await scrapes(lag, hub, 6)
    assert lag.behind == 2

    hub.fanout.feeds["c0"].position = 5  # the channel's next publication filled the gap
    del hub.fanout.feeds["c1"]  # its last subscriber left
    assert (await scrapes(lag, hub, 3))[-1] == 0
