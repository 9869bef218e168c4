"""What the chaos scenarios count must be whole: duplicate rows over the whole resource list
(not over the pages read before a budget ran out), and the changes made while Redis was
down (not those that finished while it was starting again)."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any, cast

import pytest

from chaos import scenarios
from chaos.load import Answer
from chaos.report import Result
from chaos.scenarios import Run, Sizes, Workspace
from chaos.system import User

OWNER = User("1", "owner@example.com", "owner-token")
MEMBER = User("2", "member@example.com", "member-token")


class Pages:
    """The resource list: ``pages`` of it, each page the titles given, the last one
    naming no next page (None: every page names one)."""

    def __init__(self, titles: list[str], pages: int | None) -> None:
        self.titles = titles
        self.pages = pages
        self.asked = 0

    async def call(self, method: str, path: str, headers: dict[str, str], **_: Any) -> Answer:
        self.asked += 1
        last = self.pages is not None and self.asked >= self.pages
        items = [{"title": title} for title in self.titles]
        return Answer(200, {"items": items, "next_cursor": None if last else "more"}, {})


async def _duplicates(pages: Pages, titles: list[str]) -> int:
    system = SimpleNamespace(owner=OWNER)
    return await scenarios._duplicate_rows(
        cast(Any, pages), cast(Any, system), Workspace("w", "r"), titles
    )


async def test_duplicate_rows_are_counted_over_every_page() -> None:
    pages = Pages(["a", "b"], pages=3)
    assert await _duplicates(pages, ["a", "b"]) == 4  # each title twice more
    assert pages.asked == 3


async def test_a_list_longer_than_the_page_budget_is_not_counted_as_complete() -> None:
    """Five pages more than the load's titles fill, and still a next one: not a count."""
    pages = Pages(["a"], pages=None)
    with pytest.raises(RuntimeError, match="more than 5 pages"):
        await _duplicates(pages, ["a"])
    assert pages.asked == 5


class Redis:
    """Stops at once; ``restart`` returns only after the resource change was answered."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.restarting = asyncio.Event()
        self.change_answered = threading.Event()

    def stop(self) -> None:
        pass

    def restart(self) -> None:  # in a thread of its own (asyncio.to_thread)
        self.loop.call_soon_threadsafe(self.restarting.set)
        assert self.change_answered.wait(30)


class Api:
    """Answers at once, but the resource change only once Redis is starting again."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def call(self, method: str, path: str, headers: dict[str, str], **_: Any) -> Answer:
        if method == "PATCH":
            await self.redis.restarting.wait()
            self.redis.change_answered.set()
            return Answer(200, {"version": 2}, {})
        return Answer(204 if method == "DELETE" else 200, None, {})


class Client:
    def __init__(self, *_: Any, **__: Any) -> None:
        pass

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_: object) -> None:
        pass

    async def subscribe(self, channel: str) -> None:
        pass


async def test_a_change_that_finishes_while_redis_restarts_was_not_made_during_the_outage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def new_workspace(*_: Any) -> Workspace:
        return Workspace("w", "r")

    async def add_member(*_: Any) -> None:
        pass

    monkeypatch.setattr(scenarios, "new_workspace", new_workspace)
    monkeypatch.setattr(scenarios, "add_member", add_member)
    monkeypatch.setattr(scenarios, "HubbubClient", Client)
    redis = Redis()
    system = SimpleNamespace(
        owner=OWNER, member=MEMBER, redis=redis, ws_urls=["ws://hub/ws"], hub_urls=["http://hub"]
    )
    result = Result("redis-stop")
    await scenarios.redis_fault(
        Run(cast(Any, system), Sizes(outage_s=0)),
        cast(Any, None),
        Workspace("loaded", "r"),
        cast(Any, Api(redis)),
        result,
    )
    assert "2/2 succeeded, 1 of them while Redis was down" in result.notes[0]
    assert result.not_shown == [
        "the changes made while Redis was down (only 1 of 2 finished before it was back)"
    ]
