"""Request latency against a baseline, in one run: alternating rounds, medians."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bench import stats

# One request: called with (the concurrent loop's index, the request's number).
Call = Callable[[int, int], Awaitable[object]]


async def measure(
    call: Call, requests: int, concurrency: int, *, seconds: float | None = None
) -> list[float]:
    """``requests`` calls from ``concurrency`` loops — or as many as they make in
    ``seconds`` — and each call's latency in seconds."""
    latencies: list[float] = []
    count = requests // concurrency
    until = None if seconds is None else time.perf_counter() + seconds

    async def loop(worker: int) -> None:
        i = 0
        while (i < count) if until is None else (time.perf_counter() < until):
            start = time.perf_counter()
            await call(worker, i)
            latencies.append(time.perf_counter() - start)
            i += 1

    await asyncio.gather(*(loop(w) for w in range(concurrency)))
    return latencies


async def compare(
    baseline: tuple[str, Call],
    target: tuple[str, Call],
    *,
    requests: int,
    rounds: int,
    concurrencies: tuple[int, ...] = (1, 64),
    seconds: float | None = None,
    others: Sequence[tuple[str, Call]] = (),
) -> dict[str, Any]:
    """p50, p99 and throughput of both sides per concurrency (medians over rounds that
    alternate the two, each after a warm-up), and the target/baseline ratios.

    A ratio is the median of the rounds' own ratios: each round pairs the two sides
    measured one right after the other, so a slow minute on a shared machine (which
    moves both) cancels out, where a ratio of medians would take the two medians from
    different minutes. The rounds' ratios are reported too, to show the spread.

    The order alternates too (baseline first in even rounds, target first in odd ones),
    so that neither side always runs right after the other. With ``seconds``, a round
    lasts that long (after a warm-up of a quarter of it) instead of ``requests`` calls:
    the same time at every concurrency, long enough to reach a steady state.

    ``others``: more targets measured in the same rounds (the order rotates, so each
    side takes each place in turn); each side's own ratios to the baseline are in its
    figures (``ratio_p50``, ``ratio_p99``, ``ratio_p50_rounds``), the first target's also
    at the top level."""
    sides = [baseline, target, *others]
    results: dict[str, Any] = {}
    for concurrency in concurrencies:
        figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _ in sides}
        for round_ in range(rounds):
            turn = round_ % len(sides)
            for name, call in sides[turn:] + sides[:turn]:
                warm_up = None if seconds is None else seconds / 4
                await measure(call, min(requests, 1000), concurrency, seconds=warm_up)
                start = time.perf_counter()
                samples = await measure(call, requests, concurrency, seconds=seconds)
                elapsed = time.perf_counter() - start
                ordered = sorted(samples)
                figures[name].append(
                    (
                        stats.percentile(ordered, 50),
                        stats.percentile(ordered, 99),
                        len(samples) / elapsed,
                    )
                )
        summary: dict[str, Any] = {
            name: {
                "p50_us": round(statistics.median(f[0] for f in values) * 1e6, 1),
                "p99_us": round(statistics.median(f[1] for f in values) * 1e6, 1),
                "rps": round(statistics.median(f[2] for f in values)),
            }
            for name, values in figures.items()
        }
        for name, _ in sides[1:]:
            for index, p in enumerate(("p50", "p99")):
                paired = [
                    t[index] / b[index]
                    for t, b in zip(figures[name], figures[baseline[0]], strict=True)
                ]
                summary[name][f"ratio_{p}"] = round(statistics.median(paired), 3)
                summary[name][f"ratio_{p}_rounds"] = [round(r, 3) for r in paired]
        for key in ("ratio_p50", "ratio_p99", "ratio_p50_rounds", "ratio_p99_rounds"):
            summary[key] = summary[target[0]][key]
        results[f"c{concurrency}"] = summary
    return results


def print_table(results: dict[str, Any], baseline: str, *targets: str) -> None:
    print(f"{'concurrency':>11} {'side':>9} {'p50 µs':>9} {'p99 µs':>9} {'req/s':>8}")
    for key, summary in results.items():
        for side in (baseline, *targets):
            s = summary[side]
            print(f"{key[1:]:>11} {side:>9} {s['p50_us']:>9} {s['p99_us']:>9} {s['rps']:>8}")
        for target in targets:
            s = summary[target]
            print(
                f"{'':>11} {'ratio':>9} {s['ratio_p50']:>9} {s['ratio_p99']:>9}"
                f"   ({target} / {baseline}; median of the rounds' ratios)"
            )
            rounds = s["ratio_p50_rounds"]
            print(f"{'':>11} {'rounds':>9} p50 ratio {min(rounds)}-{max(rounds)}: {rounds}")
