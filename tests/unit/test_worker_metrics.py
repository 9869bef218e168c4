"""What a worker's /metrics says about its actors: a real ActorSystem with jobs that
wait on an event (no clocks), read through the collector."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from hubbub.contracts.errors import HubbubError
from workers.actors import ActorSystem, MailboxFull
from workers.metrics import WorkerCollector


class Waiting:
    def __init__(self, release: asyncio.Event) -> None:
        self.release = release

    async def run(self) -> None:
        await self.release.wait()

    async def reject(self, error: HubbubError) -> None:
        pass


def _values(collector: WorkerCollector) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


async def test_mailbox_depth_and_refusals_of_a_full_mailbox() -> None:
    actors = ActorSystem(mailbox_size=2)
    release = asyncio.Event()
    for _ in range(2):
        actors.tell("k", Waiting(release))
    with pytest.raises(MailboxFull):
        actors.tell("k", Waiting(release))
    actors.tell("other", Waiting(release))
    collector = WorkerCollector(actors, None)

    values = _values(collector)
    assert values["hubbub_worker_actors"] == 2
    assert values["hubbub_worker_in_flight"] == 3
    assert values["hubbub_worker_mailbox_depth"] == 3
    assert values["hubbub_worker_mailbox_depth_max"] == 2
    assert values["hubbub_worker_mailbox_rejected_total"] == 1
    assert "hubbub_outbox_lag_seconds" not in values  # not read: no database here

    release.set()
    assert await actors.drain(5)
    values = _values(collector)
    assert (values["hubbub_worker_in_flight"], values["hubbub_worker_mailbox_depth"]) == (0, 0)
    assert values["hubbub_worker_mailbox_rejected_total"] == 1
