"""Load for the chaos scenarios, and what it saw.

* ``Api`` — REST calls as a careful client makes them: a mutation carries an
  ``Idempotency-Key`` and is sent again with the same key after a 5xx, a 429 or a
  connection error (on a connection error to the other hub, as a load balancer would),
  until the request's deadline. Every status is tallied; 500s separately.
* ``Load`` — resource creates (one key each, the key is also the title) and reads at a
  fixed rate until stopped, bounded by count.
* ``Watchers`` — ``HubbubClient`` subscribers on the workspace channel (spread over the
  hubs; they reconnect and recover by themselves) recording every event by offset.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from hubbub.client import HubbubClient
from hubbub.client.client import Subscription

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass
class Tally:
    requests: int = 0  # logical requests (each retried until it succeeds or its deadline)
    attempts: int = 0
    first_try: int = 0  # succeeded at the first attempt
    failed: int = 0  # never succeeded within the deadline (or refused for good)
    status_5xx: int = 0  # attempts answered 5xx
    status_500: int = 0  # of which 500
    connection_errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # the first few, for the report

    def fail(self, why: str) -> None:
        self.failed += 1
        if len(self.failures) < 5:
            self.failures.append(why)


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


class Api:
    def __init__(
        self, session: aiohttp.ClientSession, hubs: list[str], tally: Tally, deadline_s: float
    ) -> None:
        self.session = session
        self.hubs = hubs
        self.tally = tally
        self.deadline_s = deadline_s
        self._next = 0

    async def call(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        *,
        json: Any = None,
        ok: tuple[int, ...] = (200, 201, 204),
        idempotent: bool = True,
        count: bool = True,
    ) -> Answer | None:
        """The first answer with a status in ``ok``; None when there was none in time."""
        if count:
            self.tally.requests += 1
        headers = dict(headers)
        if method != "GET" and idempotent:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        hub = self._next = (self._next + 1) % len(self.hubs)
        deadline = time.monotonic() + self.deadline_s
        last = ""
        for attempt in range(1, 1000):
            if count:
                self.tally.attempts += 1
            status: int | None = None
            try:
                async with self.session.request(
                    method,
                    self.hubs[hub] + "/api/v1" + path,
                    json=json,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=15),
                ) as response:
                    status = response.status
                    raw = await response.read()
                    retry_after = response.headers.get("Retry-After")
                    answer = Answer(status, _json(raw), dict(response.headers))
            except (aiohttp.ClientError, TimeoutError) as exc:
                if count:
                    self.tally.connection_errors += 1
                last = f"{type(exc).__name__}: {exc}"
                hub = (hub + 1) % len(self.hubs)  # as a load balancer: the other hub
                retry_after = None
            if status is not None:
                if count:
                    self.tally.statuses[status] += 1
                    if status >= 500:
                        self.tally.status_5xx += 1
                    if status == 500:
                        self.tally.status_500 += 1
                if status in ok:
                    if attempt == 1 and count:
                        self.tally.first_try += 1
                    return answer
                last = f"{status} {str(answer.body)[:200]}"
                if status not in RETRY_STATUSES or (method != "GET" and not idempotent):
                    break
            if time.monotonic() > deadline:
                break
            delay = random.uniform(0.05, min(1.0, 0.05 * 2**attempt))
            if retry_after and retry_after.isdigit():
                delay = max(delay, min(float(retry_after), 2.0))
            await asyncio.sleep(delay)
        if count:
            self.tally.fail(f"{method} {path}: {last}")
        return None


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return raw[:200].decode(errors="replace")


class Load:
    """Resource creates and reads at ``rate`` per second each, until ``stop()`` or
    ``max_requests`` creates."""

    def __init__(
        self,
        api: Api,
        headers: dict[str, str],
        workspace_id: str,
        read_id: str,
        *,
        rate: float,
        max_requests: int,
        concurrency: int = 32,
    ) -> None:
        self.api = api
        self.headers = headers
        self.workspace_id = workspace_id
        self.read_id = read_id
        self.rate = rate
        self.max_requests = max_requests
        self.created: dict[str, str] = {}  # title (= the request's key) → resource id
        self.titles: list[str] = []
        self._stop = asyncio.Event()
        self._gate = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="chaos-load")

    async def stop(self) -> None:
        """Stop sending new requests; wait for those under way (each bounded by its
        deadline)."""
        self._stop.set()
        if self._task is not None:
            await self._task
        if self._inflight:
            await asyncio.gather(*self._inflight)

    async def _run(self) -> None:
        start = time.monotonic()
        for n in range(self.max_requests):
            if self._stop.is_set():
                return
            await self._gate.acquire()
            task = asyncio.create_task(self._one(n))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
            wait = start + (n + 1) / self.rate - time.monotonic()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), wait)

    async def _one(self, n: int) -> None:
        try:
            title = f"chaos-{uuid.uuid4().hex}"
            self.titles.append(title)
            path = f"/workspaces/{self.workspace_id}/resources"
            answer = await self.api.call(
                "POST", path, self.headers, json={"kind": "task", "title": title}
            )
            if answer is not None and isinstance(answer.body, dict):
                self.created[title] = str(answer.body["id"])
            await self.api.call("GET", f"{path}/{self.read_id}", self.headers)
        finally:
            self._gate.release()


@dataclass
class Seen:
    offsets: list[int] = field(default_factory=list)
    created: Counter[str] = field(default_factory=Counter)  # resource id → times delivered


class Watchers:
    """``n`` subscribers of ``channel``, watcher i first on hub i (mod the hubs)."""

    def __init__(self, ws_urls: list[str], token: str, channel: str, n: int) -> None:
        self.clients = [
            HubbubClient(
                ws_urls[i % len(ws_urls) :] + ws_urls[: i % len(ws_urls)],
                token,
                backoff_min=0.05,
                backoff_max=1.0,
                rpc_timeout=10,
            )
            for i in range(n)
        ]
        self.channel = channel
        self.seen = [Seen() for _ in self.clients]
        self.subs: list[Subscription] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for client in self.clients:
            await client.connect()
            self.subs.append(await client.subscribe(self.channel))
        self._tasks = [
            asyncio.create_task(self._consume(sub, seen))
            for sub, seen in zip(self.subs, self.seen, strict=True)
        ]

    async def _consume(self, sub: Subscription, seen: Seen) -> None:
        while True:
            publication = await sub.queue.get()
            seen.offsets.append(publication.offset)
            event = publication.data
            if isinstance(event, dict) and event.get("type") == "resource.created":
                seen.created[str(event["data"]["id"])] += 1

    async def settle(self, expected: set[str], timeout: float) -> None:
        """Wait (bounded) until every watcher has seen every resource in ``expected``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(expected <= set(seen.created) for seen in self.seen):
                return
            await asyncio.sleep(0.1)

    def lost(self, expected: set[str]) -> int:
        return sum(len(expected - set(seen.created)) for seen in self.seen)

    def duplicated(self) -> int:
        return sum(n - 1 for seen in self.seen for n in seen.created.values() if n > 1)

    def reordered(self) -> int:
        return sum(1 for seen in self.seen for a, b in itertools.pairwise(seen.offsets) if b <= a)

    def resets(self) -> int:
        return sum(sub.resets for sub in self.subs)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for client in self.clients:
            await client.close()
