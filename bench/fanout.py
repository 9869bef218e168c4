"""Fan-out benchmark: deliveries per second to N subscribers of one channel.

Procedure (against any :class:`~bench.targets.Target`):

1. Start the target; connect ``--subscribers`` sockets (default 1,000) that
   subscribe to one channel; wait until the server holds them all.
2. A publisher (in this process) publishes at a steady, open-loop rate: one
   publication every 1/rate s, each carrying ``"t": time.time_ns()`` and
   padding up to ``--payload`` bytes; at most ``--max-inflight`` publications
   in flight (a tick that finds the cap reached is *skipped*).
3. Each step runs ``--step-secs`` seconds; the first ``--warm-secs`` are not
   measured.  In the measured window: deliveries/s (text frames received by
   all sockets), publish-to-receive latency (sampled, 1 frame in
   ``--sample-every``), CPU of the server, of the clients and of this
   process (cores: 1.0 = one core busy), and how busy the whole machine was.
   After the publisher stops, the step waits for every expected frame to
   arrive (drain).
4. A step is *sustainable* if the publisher kept its rate (>= 95 %, no
   skipped tick, no error), deliveries kept up with publications
   (>= 95 % of publishes/s x subscribers), latency did not pile up
   (p50 <= ``--p50-limit-ms``, p99 <= ``--p99-limit-ms``) and the backlog
   drained within ``--drain-limit`` s with nothing lost.  A step that is not
   sustainable is run once more (``--confirm``) before it counts as failed.
5. The rate doubles from ``--start-rate`` until a step is not sustainable,
   then bisects ``--bisect`` times between the last good and first bad rate.
6. Saturation = the highest deliveries/s measured in any step (steps that
   other processes disturbed are left out when possible); the highest
   sustainable step is reported too.  A last, longer step at
   ``--latency-at`` (default 50 %) of the saturation rate gives the latency
   figures.

While it searches for saturation the client processes coalesce their reads
(``--read-batch-ms``, default 10 ms: they block that long between I/O polls,
so a frame wakes nobody and a read may carry several frames); the latency
step runs without it.  The machine may be shared: before each step the
benchmark waits for other processes to leave the CPUs alone, and repeats a
step during which they used more than ``--noise-limit`` cores.

Output: one ``key=value`` line per step and a final ``RESULT {json}`` line; the
JSON also goes to ``bench/results/``.  ``python -m bench.fanout --help``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import uvloop

from bench.fanout_steps import FanoutBench, bottleneck, pin
from bench.targets import make_target, ratio, split_options
from bench.wsclient import ClientPool, raise_nofile

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# Issue 14, goal 4: server CPU per delivery at 1,000 subscribers.
GOAL_US_PER_DELIVERY = 10.0


async def amain(a: argparse.Namespace, spec: str, options: list[str]) -> dict[str, Any]:
    raise_nofile(a.subscribers + 1024)
    target = make_target(spec, options)
    pool = ClientPool(a.procs, a.sample_every, seed=1)
    await target.start()
    try:
        await pool.start()
        pinned = pin(target, pool) if a.pin else {}
        scripts = target.socket_scripts(a.subscribers, a.channel)
        rep = await pool.connect(
            target.ws_target(), a.subscribers, scripts, a.concurrency, a.connect_timeout
        )
        cs = rep.summary()
        print(
            "connect " + " ".join(f"{k}={v}" for k, v in cs.items() if k != "errors"),
            flush=True,
        )
        if rep.failed:
            raise RuntimeError(f"{rep.failed} sockets failed to connect: {rep.errors}")
        await target.await_sockets(a.subscribers)
        if a.read_batch_ms > 0:
            await pool.set_read_batch(a.read_batch_ms / 1000.0)
        bench = FanoutBench(a, target, pool)
        res = await bench.run()
        res["saturation_step"]["client_procs"] = max(1, a.procs)
        res["bottleneck"] = bottleneck(res)
        final = await pool.snapshot()
        res.update(
            {
                "bench": "fanout",
                "target": target.name,
                "subscribers": a.subscribers,
                "payload_bytes": a.payload,
                "client_procs": a.procs,
                "pinned": pinned,
                "connect": cs,
                "client_errors": final.errors,
                "client_close_codes": final.close_codes,
                "machine": {
                    "cpus": psutil.cpu_count(),
                    "mem_gib": round(psutil.virtual_memory().total / 2**30, 1),
                },
                "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                "argv": sys.argv,
            }
        )
        await pool.close()
        return res
    finally:
        await pool.stop()
        await target.stop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="fan-out benchmark (see module docstring)")
    ap.add_argument(
        "--target",
        action="append",
        help="bare, hubbub, or package.module:Class; repeatable: every target runs "
        "in turn and ratios against the first (the baseline) are printed "
        "(default: bare, then hubbub)",
    )
    ap.add_argument(
        "--target-opt",
        action="append",
        default=[],
        metavar="[TARGET@]KEY=VALUE",
        help="adapter option (to every target, or to TARGET only); repeatable",
    )
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--channel", default="bench.fanout")
    ap.add_argument(
        "-P",
        "--procs",
        type=int,
        default=1,
        help="client worker processes (0: in this process)",
    )
    ap.add_argument("--payload", type=int, default=100, help="application payload bytes")
    ap.add_argument("--start-rate", type=float, default=10.0, help="first step, publishes/s")
    ap.add_argument("--max-rate", type=float, default=100_000.0)
    ap.add_argument("--step-secs", type=float, default=4.0)
    ap.add_argument("--warm-secs", type=float, default=1.0)
    ap.add_argument("--bisect", type=int, default=3)
    ap.add_argument(
        "--latency-at",
        type=float,
        default=0.5,
        help="latency step rate, as a fraction of the saturation rate",
    )
    ap.add_argument(
        "--latency-rate",
        type=float,
        default=None,
        help="latency step at this many publishes/s; by default the first target's "
        "(the baseline's) 50%% of saturation, and every later target at that same rate, "
        "so that the latency ratios compare like with like",
    )
    ap.add_argument("--latency-secs", type=float, default=8.0)
    ap.add_argument(
        "--p50-limit-ms",
        type=float,
        default=50.0,
        help="a step whose p50 latency is above this is not sustainable (queueing)",
    )
    ap.add_argument(
        "--p99-limit-ms",
        type=float,
        default=250.0,
        help="... nor one whose p99 is above this (one GC pause or hiccup must not fail a step)",
    )
    ap.add_argument(
        "--confirm",
        type=int,
        default=1,
        help="a step that is not sustainable is run again this many times; "
        "it fails only if every attempt fails",
    )
    ap.add_argument("--drain-limit", type=float, default=1.0, help="s")
    ap.add_argument("--drain-timeout", type=float, default=15.0, help="s")
    ap.add_argument("--max-inflight", type=int, default=32)
    ap.add_argument("--sample-every", type=int, default=50)
    ap.add_argument(
        "--concurrency",
        type=int,
        default=200,
        help="handshakes in flight while connecting",
    )
    ap.add_argument("--connect-timeout", type=float, default=30.0)
    ap.add_argument(
        "--noise-limit",
        type=float,
        default=0.15,
        help="cores other processes may use during a step before it is retried",
    )
    ap.add_argument("--retries", type=int, default=4, help="retries of a noisy step")
    ap.add_argument("--noise-wait", type=float, default=2.0, help="s before a retry")
    ap.add_argument(
        "--quiet-timeout",
        type=float,
        default=60.0,
        help="s to wait, before each step, for other processes to go quiet",
    )
    ap.add_argument(
        "--read-batch-ms",
        type=float,
        default=10.0,
        help="while searching for saturation the clients coalesce reads: they block "
        "this long between I/O polls (0: off; the latency step always runs with it off)",
    )
    ap.add_argument(
        "--pin",
        action="store_true",
        help="server on CPU 0, clients and publisher on the others",
    )
    ap.add_argument(
        "--out",
        default="",
        help="JSON result file (default bench/results/fanout-<target>-<time>.json)",
    )
    return ap.parse_args(argv)


def _summary(res: dict[str, Any], out: Path) -> None:
    sat = res["saturation_step"]
    lat = res["latency_step"]["latency"]
    print(
        f"summary target={res['target']} subscribers={res['subscribers']} "
        f"saturation_deliveries/s={res['saturation_deliveries_per_s']} "
        f"max_sustainable_deliveries/s={res['max_sustainable_deliveries_per_s']} "
        f"server_cpu_at_saturation={sat['server_cpu']} machine_busy={sat['machine_busy']} "
        f"us/delivery_at_saturation={res['us_per_delivery_at_saturation']} "
        f"us/delivery_at_latency_rate={res['us_per_delivery_at_latency_rate']} "
        f"latency_rate={res['latency_step']['rate']} p50_ms={lat['p50_ms']} "
        f"p99_ms={lat['p99_ms']} bottleneck={json.dumps(res['bottleneck'])} "
        f"load={res['load_start']}->{res['load_end']} json={os.path.relpath(out)}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    specs: list[str] = a.target or ["bare", "hubbub"]
    opts = split_options(specs, a.target_opt)
    runs: list[dict[str, Any]] = []
    for spec in specs:
        load_start = round(os.getloadavg()[0], 2)
        res = uvloop.run(amain(a, spec, opts[spec]))
        res["load_start"], res["load_end"] = load_start, round(os.getloadavg()[0], 2)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = RESULTS_DIR / f"fanout-{res['target']}-{stamp}.json"
        if a.out:
            out = Path(a.out) if len(specs) == 1 else Path(f"{a.out}.{res['target']}")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=2, sort_keys=True, default=str) + "\n")
        _summary(res, out)
        runs.append(res)
        if a.latency_rate is None:  # every later target: the baseline's latency rate
            a.latency_rate = res["latency_step"]["rate"]
    base = runs[0]
    ratios = []
    for r in runs[1:]:
        bl, rl = base["latency_step"]["latency"], r["latency_step"]["latency"]
        q = {
            "target": r["target"],
            "baseline": base["target"],
            "saturation": ratio(
                r["saturation_deliveries_per_s"], base["saturation_deliveries_per_s"]
            ),
            "max_sustainable": ratio(
                r["max_sustainable_deliveries_per_s"],
                base["max_sustainable_deliveries_per_s"],
            ),
            "latency_p50": ratio(rl["p50_ms"], bl["p50_ms"]),
            "latency_p99": ratio(rl["p99_ms"], bl["p99_ms"]),
            "us_per_delivery_at_saturation": ratio(
                r["us_per_delivery_at_saturation"], base["us_per_delivery_at_saturation"]
            ),
            "us_per_delivery_at_latency_rate": ratio(
                r["us_per_delivery_at_latency_rate"], base["us_per_delivery_at_latency_rate"]
            ),
        }
        ratios.append(q)
        print("ratio " + " ".join(f"{k}={v}" for k, v in q.items()), flush=True)
        us = r["us_per_delivery_at_saturation"]
        print(
            f"goal us/delivery_at_saturation target={r['target']} value={us} "
            f"baseline={base['us_per_delivery_at_saturation']} goal<={GOAL_US_PER_DELIVERY} "
            f"met={'yes' if us is not None and us <= GOAL_US_PER_DELIVERY else 'no'} "
            f"load={r['load_start']}->{r['load_end']}",
            flush=True,
        )
    result = {
        "bench": "fanout",
        "baseline": base["target"],
        "runs": runs,
        "ratios": ratios,
    }
    print("RESULT " + json.dumps(result, sort_keys=True, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
