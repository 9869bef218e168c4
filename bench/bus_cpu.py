"""CPU time per request of each process in the bus round trip (``bench.bus``'s setup).

    python -m bench.bus_cpu [--requests 20000] [--rounds 3] [--concurrency 64]

Latency on a shared machine is noisy; CPU time per request is not (much): for each side
(bare nats-py, Hubbub) the CPU seconds the requester, the responder and the NATS server
spent over a round, divided by the round's requests. Medians over alternating rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import orjson
import psutil
import uvloop

from bench.bus import BARE_SUBJECT, NAMESPACE, ROOT, echo
from bench.latency import measure
from hubbub.bus import Bus
from hubbub.contracts.subjects import Subjects
from hubbub.embedded.process import die_with_parent
from hubbub.gc_tuning import tune_gc
from hubbub.natsconn import connect_nats


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def _nats_process(url: str) -> psutil.Process:
    port = url.rsplit(":", 1)[1]
    for proc in psutil.process_iter(["name", "cmdline"]):
        if "nats" in (proc.info["name"] or "") and port in " ".join(proc.info["cmdline"] or []):
            return proc
    raise RuntimeError(f"no nats-server on port {port}")


# user and system CPU of the requester and the responder, the NATS server's, wall time
FIGURES = ("req_usr", "req_sys", "resp_usr", "resp_sys", "nats", "wall")


def _split(proc: psutil.Process) -> tuple[float, float]:
    t = proc.cpu_times()
    return t.user, t.system


async def run(args: argparse.Namespace, urls: dict[str, str]) -> dict[str, Any]:
    env = {
        **os.environ,
        **urls,
        "HUBBUB_NAMESPACE": NAMESPACE,
        "HUBBUB_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    env.setdefault("HUBBUB_STATE_DIR", tempfile.mkdtemp(prefix="hubbub-bench-"))
    procs = {
        side: subprocess.Popen(
            [sys.executable, "-m", "bench.bus", "--serve", side],
            env=env,
            cwd=ROOT,
            preexec_fn=die_with_parent(),
        )
        for side in ("bare", "hubbub")
    }
    nc = await connect_nats(urls["NATS_URL"], "bench-requester")
    tune_gc()
    bus = Bus(nc, Subjects(NAMESPACE))
    me = psutil.Process()
    nats = _nats_process(urls["NATS_URL"])
    try:

        async def bare(worker: int, n: int) -> None:
            msg = await nc.request(
                BARE_SUBJECT, orjson.dumps({"key": f"k{worker}", "n": n}), timeout=5
            )
            orjson.loads(msg.data)

        async def hubbub(worker: int, n: int) -> None:
            await bus.request(echo, {"key": f"k{worker}", "n": n}, caller=None, timeout=5)

        calls = {"bare": bare, "hubbub": hubbub}
        for call in calls.values():
            for _ in range(300):
                try:
                    await call(0, 0)
                    break
                except Exception:
                    await asyncio.sleep(0.1)
        figures: dict[str, dict[str, list[float]]] = {
            side: {name: [] for name in FIGURES} for side in calls
        }
        for _ in range(args.rounds):
            for side, call in calls.items():
                await measure(call, 2000, args.concurrency)
                responder = psutil.Process(procs[side].pid)
                before = (*_split(me), *_split(responder), _cpu(nats), time.perf_counter())
                await measure(call, args.requests, args.concurrency)
                after = (*_split(me), *_split(responder), _cpu(nats), time.perf_counter())
                for name, b, a in zip(FIGURES, before, after, strict=True):
                    figures[side][name].append((a - b) / args.requests * 1e6)
        return {
            side: {name: round(statistics.median(v), 1) for name, v in f.items()}
            for side, f in figures.items()
        }
    finally:
        await nc.close()
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    from bench.services import services

    with services() as urls:
        results = asyncio.run(run(args, urls))
    print(f"CPU µs per request, c{args.concurrency}, medians over {args.rounds} rounds")
    for side, f in results.items():
        print(f"{side:>7}: " + "  ".join(f"{k} {v}" for k, v in f.items()))
    print(orjson.dumps({"bench": "bus_cpu", "results": results}).decode())


if __name__ == "__main__":
    main()
