"""CPU time per request of each process in the bus round trip (``bench.bus``'s setup).

    python -m bench.bus_cpu [--requests 20000] [--rounds 3] [--concurrency 64]
                            [--unsigned] [--no-auth]

Latency on a shared machine is noisy; CPU time per request is not (much): for each side
(bare nats-py, Hubbub) the CPU seconds the requester, the responder and the NATS server
spent over a round, divided by the round's requests. Medians over alternating rounds.
The setup is ``bench.bus``'s: NATS with auth, signed user callers; ``--unsigned`` adds
Hubbub with the caller null, ``--no-auth`` uses an anonymous NATS.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import orjson
import psutil
import uvloop

from bench.bus import bus_services, round_trip
from bench.latency import measure
from bench.probes import process_cpu


def _cpu(proc: psutil.Process) -> float:
    return process_cpu([proc.pid])[0]


def _nats_process(url: str) -> psutil.Process:
    port = url.rsplit(":", 1)[1]
    for proc in psutil.process_iter(["name", "cmdline"]):
        if "nats" in (proc.info["name"] or "") and port in " ".join(proc.info["cmdline"] or []):
            return proc
    raise RuntimeError(f"no nats-server on port {port}")


# user and system CPU of the requester and the responder, the NATS server's, wall time
FIGURES = ("req_usr", "req_sys", "resp_usr", "resp_sys", "nats", "wall")


def _split(proc: psutil.Process) -> tuple[float, float]:
    """User and system CPU seconds of ``proc``."""
    total, system = process_cpu([proc.pid])
    return total - system, system


async def run(
    args: argparse.Namespace, urls: dict[str, str], auth_folder: Path | None
) -> dict[str, Any]:
    async with round_trip(urls, auth_folder) as rig:
        sides = ["bare", "hubbub", *(["unsigned"] if args.unsigned else [])]
        me = psutil.Process()
        nats = _nats_process(urls["NATS_URL"])
        figures: dict[str, dict[str, list[float]]] = {
            side: {name: [] for name in FIGURES} for side in sides
        }
        for _ in range(args.rounds):
            for side in sides:
                call = rig.calls[side]
                await measure(call, 2000, args.concurrency)
                responder = psutil.Process(rig.responders[side])
                before = (*_split(me), *_split(responder), _cpu(nats), time.perf_counter())
                await measure(call, args.requests, args.concurrency)
                after = (*_split(me), *_split(responder), _cpu(nats), time.perf_counter())
                for name, b, a in zip(FIGURES, before, after, strict=True):
                    figures[side][name].append((a - b) / args.requests * 1e6)
        return {
            side: {name: round(statistics.median(v), 1) for name, v in f.items()}
            for side, f in figures.items()
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--unsigned", action="store_true", help="also Hubbub, caller null")
    parser.add_argument("--no-auth", action="store_true", help="an anonymous NATS")
    args = parser.parse_args()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    with bus_services(args.no_auth) as (urls, auth_folder):
        results = asyncio.run(run(args, urls, auth_folder))
    nats = "anonymous NATS" if args.no_auth else "NATS with auth"
    print(f"CPU µs per request, c{args.concurrency}, medians over {args.rounds} rounds; {nats}")
    for side, f in results.items():
        print(f"{side:>8}: " + "  ".join(f"{k} {v}" for k, v in f.items()))
    print(orjson.dumps({"bench": "bus_cpu", "results": results}).decode())


if __name__ == "__main__":
    main()
