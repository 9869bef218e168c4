"""Idle-socket benchmark: connect time and server memory per WebSocket.

Procedure (against any :class:`~bench.targets.Target`):

1. Start the target.  Warm it up: connect ``--warmup`` sockets and close
   them again, so lazily imported code and one-time caches are not counted.
2. Measure the server's RSS (sum over :meth:`Target.server_pids`), after a
   short settle.
3. Connect ``--sockets`` sockets (default 10,000; ``--concurrency``
   handshakes in flight, spread over ``--procs`` client processes), each
   running the target's connect script (``--subscribe``: also subscribe
   to a channel); time the whole and each connect (TCP connect -> ready).
4. Wait until the server holds them all, settle ``--settle`` s, measure the
   RSS again: (after - before) / sockets = RSS per socket.  Server CPU while
   the sockets sit idle is reported too.
5. Close the sockets and measure the RSS once more (how much came back).

Every target runs ``--rounds`` times (default 3), interleaved with the others
(bare, hubbub, bare, hubbub, ...): a single run's connects/s moves with the host by up
to a fifth either way, so the goals are judged on the median of the rounds' ratios.

Output: ``key=value`` lines and a final ``RESULT {json}`` line; the JSON also
goes to ``bench/results/``.  ``python -m bench.sockets --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import uvloop

from bench.probes import process_cpu, rss
from bench.targets import Target, make_target, ratio, split_options
from bench.wsclient import ClientPool, raise_nofile

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# Issue 14, goal 3: RSS per idle, authenticated, subscribed socket, and connects/s
# against the bare server of the same run.
GOAL_RSS_KIB = 16.0
GOAL_CONNECTS_RATIO = 0.9


def _cpu(pids: list[int]) -> float:
    return process_cpu(pids)[0]


async def _connect_and_close(
    target: Target, pool: ClientPool, n: int, channel: str | None, a: argparse.Namespace
) -> None:
    scripts = target.socket_scripts(n, channel)
    rep = await pool.connect(target.ws_target(), n, scripts, a.concurrency, a.timeout)
    if rep.failed:
        raise RuntimeError(f"warm-up: {rep.failed} sockets failed: {rep.errors}")
    await target.await_sockets(n)
    await pool.close()
    await target.await_sockets(0)


async def amain(a: argparse.Namespace, spec: str, options: list[str]) -> dict[str, Any]:
    raise_nofile(a.sockets + 1024)
    target = make_target(spec, options)
    pool = ClientPool(a.procs, sample_every=1_000_000)
    channel = a.channel if a.subscribe else None
    await target.start()
    try:
        await pool.start()
        pids = target.server_pids()
        rss_start = rss(pids)
        if a.warmup:
            await _connect_and_close(target, pool, a.warmup, channel, a)
        await asyncio.sleep(a.settle)
        rss_before = rss(pids)
        print(
            f"before rss_mib={rss_before / 2**20:.1f} start_rss_mib={rss_start / 2**20:.1f}",
            flush=True,
        )

        scripts = target.socket_scripts(a.sockets, channel)
        cpu0 = _cpu(pids)
        rep = await pool.connect(target.ws_target(), a.sockets, scripts, a.concurrency, a.timeout)
        cs = rep.summary()
        connect_cpu = _cpu(pids) - cpu0
        print(
            "connect "
            + " ".join(f"{k}={v}" for k, v in cs.items() if k != "errors")
            + f" server_cpu_s={connect_cpu:.2f}",
            flush=True,
        )
        for err, cnt in rep.errors.items():
            print(f"connect_error count={cnt} error={json.dumps(err)}", flush=True)
        await target.await_sockets(rep.ok, timeout=a.timeout)
        await asyncio.sleep(a.settle)
        rss_after = rss(pids)
        t0, c0 = time.perf_counter(), _cpu(pids)
        await asyncio.sleep(a.idle_secs)
        idle_cpu = (_cpu(pids) - c0) / (time.perf_counter() - t0)
        snap = await pool.snapshot()
        per_socket = (rss_after - rss_before) / rep.ok if rep.ok else float("nan")
        print(
            f"after sockets={rep.ok} rss_mib={rss_after / 2**20:.1f} "
            f"rss_per_socket_kib={per_socket / 1024:.2f} idle_server_cpu={idle_cpu:.3f} "
            f"client_rss_per_socket_kib={snap.rss / max(1, rep.ok) / 1024:.2f}",
            flush=True,
        )

        await pool.close()
        await target.await_sockets(0, timeout=a.timeout)
        await asyncio.sleep(a.settle)
        rss_closed = rss(pids)
        print(f"closed rss_mib={rss_closed / 2**20:.1f}", flush=True)
        return {
            "bench": "sockets",
            "target": target.name,
            "sockets": a.sockets,
            "subscribed": a.subscribe,
            "client_procs": a.procs,
            "connect": cs,
            "connect_server_cpu_s": round(connect_cpu, 3),
            # Less sensitive to a busy host than connects/s: the server's own CPU.
            "server_us_per_connect": round(connect_cpu / rep.ok * 1e6, 1) if rep.ok else None,
            "rss_start_bytes": rss_start,
            "rss_before_bytes": rss_before,
            "rss_after_bytes": rss_after,
            "rss_closed_bytes": rss_closed,
            "rss_per_socket_kib": round(per_socket / 1024, 2),
            "idle_server_cpu": round(idle_cpu, 4),
            "client_rss_bytes": snap.rss,
            "client_errors": snap.errors,
            "machine": {
                "cpus": psutil.cpu_count(),
                "mem_gib": round(psutil.virtual_memory().total / 2**30, 1),
            },
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "argv": sys.argv,
        }
    finally:
        await pool.stop()
        await target.stop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="idle-socket benchmark (see module docstring)")
    ap.add_argument(
        "--target",
        action="append",
        help="bare, raw, hubbub, or package.module:Class; repeatable: every target runs "
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
    ap.add_argument("--sockets", type=int, default=10_000)
    ap.add_argument("--warmup", type=int, default=200, help="sockets opened and closed first")
    ap.add_argument(
        "--no-subscribe",
        dest="subscribe",
        action="store_false",
        help="sockets only connect (by default each also subscribes to the channel)",
    )
    ap.add_argument("--channel", default="bench.idle")
    ap.add_argument("-P", "--procs", type=int, default=2, help="client worker processes")
    ap.add_argument("--concurrency", type=int, default=200, help="handshakes in flight")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--settle", type=float, default=2.0, help="s before each RSS reading")
    ap.add_argument("--idle-secs", type=float, default=3.0, help="s of idle CPU measured")
    ap.add_argument("--out", default="")
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="run the targets this many times, interleaved (bare, hubbub, bare, ...); "
        "the goals are judged on the median of the rounds' ratios",
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.rounds < 1:
        raise SystemExit("--rounds must be 1 or more")
    specs: list[str] = a.target or ["bare", "hubbub"]
    opts = split_options(specs, a.target_opt)
    runs: list[dict[str, Any]] = []
    ratios: list[dict[str, Any]] = []
    by_target: dict[str, list[dict[str, Any]]] = {}  # each target's ratios, round by round
    for round_no in range(1, a.rounds + 1):
        this_round = [_run(a, spec, opts[spec], round_no) for spec in specs]
        runs += this_round
        base = this_round[0]
        for r in this_round[1:]:
            q = _ratios(base, r)
            if a.rounds > 1:
                q["round"] = round_no
            ratios.append(q)
            by_target.setdefault(r["target"], []).append(q)
            print("ratio " + " ".join(f"{k}={v}" for k, v in q.items()), flush=True)
    goals = [_goals(q) for q in by_target.values()]
    result = {
        "bench": "sockets",
        "baseline": runs[0]["target"],
        "runs": runs,
        "ratios": ratios,
        "goals": goals,
    }
    print("RESULT " + json.dumps(result, sort_keys=True), flush=True)
    return 0


def _run(a: argparse.Namespace, spec: str, options: list[str], round_no: int) -> dict[str, Any]:
    """One target's run: its figures, written to ``bench/results/`` and summed up."""
    load_start = round(os.getloadavg()[0], 2)
    res = uvloop.run(amain(a, spec, options))
    res["load_start"], res["load_end"] = load_start, round(os.getloadavg()[0], 2)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = res["target"] if a.rounds == 1 else f"{res['target']}.{round_no}"
    out = RESULTS_DIR / f"sockets-{name}-{stamp}.json"
    if a.out:
        single = len(a.target or ["bare", "hubbub"]) == 1 and a.rounds == 1
        out = Path(a.out) if single else Path(f"{a.out}.{name}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
    c = res["connect"]
    print(
        f"summary target={res['target']} sockets={c['ok']}/{res['sockets']} "
        f"connect_s={c['elapsed_s']} connects/s={c['connects_per_s']} "
        f"connect_p50_ms={c['connect_p50_ms']} connect_p99_ms={c['connect_p99_ms']} "
        f"rss_per_socket_kib={res['rss_per_socket_kib']} "
        f"server_us_per_connect={res['server_us_per_connect']} "
        f"load={res['load_start']}->{res['load_end']} json={os.path.relpath(out)}",
        flush=True,
    )
    return res


def _ratios(base: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
    return {
        "target": r["target"],
        "baseline": base["target"],
        "rss_per_socket": ratio(r["rss_per_socket_kib"], base["rss_per_socket_kib"]),
        "connects_per_s": ratio(r["connect"]["connects_per_s"], base["connect"]["connects_per_s"]),
        "connect_p99": ratio(r["connect"]["connect_p99_ms"], base["connect"]["connect_p99_ms"]),
        "server_us_per_connect": ratio(r["server_us_per_connect"], base["server_us_per_connect"]),
        "rss_per_socket_kib": r["rss_per_socket_kib"],
        "load": f"{r['load_start']}->{r['load_end']}",
    }


def _goals(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Issue 14's goal 3 for one target, judged on the median of its rounds (a single
    run's connects/s moves with the host by up to a fifth either way)."""
    target = rounds[0]["target"]
    kib = statistics.median(q["rss_per_socket_kib"] for q in rounds)
    cps = [q["connects_per_s"] for q in rounds if q["connects_per_s"] is not None]
    cps_median = statistics.median(cps) if cps else None
    print(
        f"goal rss_per_socket_kib target={target} value={kib} goal<={GOAL_RSS_KIB} "
        f"rounds={len(rounds)} met={'yes' if kib <= GOAL_RSS_KIB else 'no'}",
        flush=True,
    )
    met = cps_median is not None and cps_median >= GOAL_CONNECTS_RATIO
    print(
        f"goal connects_per_s target={target} ratio={cps_median} goal>={GOAL_CONNECTS_RATIO}x "
        f"rounds={len(rounds)} round_ratios={cps} met={'yes' if met else 'no'}",
        flush=True,
    )
    return {
        "target": target,
        "rss_per_socket_kib": kib,
        "rss_met": kib <= GOAL_RSS_KIB,
        "connects_per_s_ratio": cps_median,
        "connects_met": met,
        "rounds": len(rounds),
    }


if __name__ == "__main__":
    sys.exit(main())
