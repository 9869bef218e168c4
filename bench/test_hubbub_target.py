"""The hub target waits for the sockets the hub holds as the bare target does: for as
many as asked, not at least as many (after closing them all, for none).

``python -m pytest bench/test_hubbub_target.py``.
"""

from __future__ import annotations

import shutil

import pytest

from bench.hubbub_target import HubbubTarget


@pytest.mark.parametrize(("held", "n"), [([1000, 400, 0], 0), ([2, 5, 3], 3)])
async def test_waits_for_the_hub_to_hold_as_many_sockets_as_asked(
    monkeypatch: pytest.MonkeyPatch, held: list[float], n: int
) -> None:
    target = HubbubTarget()
    shutil.rmtree(target._dir)
    answers = iter(held)
    read: list[float] = []

    def metric(name: str) -> float:
        assert name == "hubbub_ws_connections"
        read.append(next(answers))
        return read[-1]

    monkeypatch.setattr(target, "_metric", metric)
    await target.await_sockets(n, timeout=30)
    assert read == held
