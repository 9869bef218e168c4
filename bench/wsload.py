"""WebSocket load from the command line: open many sockets (``bench.wsclient``), run a
script on each, hold them and print what they receive, once a second.

``python -m bench.wsload --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import uvloop

from bench.stats import latency_summary
from bench.wsclient import ClientPool, Script, WSTarget, raise_nofile


def _emit(kind: str, **fields: Any) -> None:
    parts = [kind] + [f"{k}={v}" for k, v in fields.items()]
    print(" ".join(parts), flush=True)


async def _cli(args: argparse.Namespace) -> dict[str, Any]:
    target = WSTarget.from_url(
        args.url, args.subprotocol, [tuple(h.split(":", 1)) for h in args.header]
    ).resolved()
    frames = [f.encode() for f in args.send]
    scripts: Script | list[Script]
    if any("{i}" in f for f in args.send):
        scripts = [
            Script(
                tuple(f.replace(b"{i}", str(i).encode()) for f in frames),
                args.ready_after,
            )
            for i in range(args.n)
        ]
    else:
        scripts = Script(tuple(frames), args.ready_after)
    pool = ClientPool(args.procs, args.sample_every)
    await pool.start()
    try:
        rep = await pool.connect(target, args.n, scripts, args.concurrency, args.timeout)
        csum = rep.summary()
        _emit("connect", **{k: v for k, v in csum.items() if k != "errors"})
        for err, cnt in rep.errors.items():
            _emit("connect_error", count=cnt, error=json.dumps(err))
        if args.read_batch_ms > 0:
            await pool.set_read_batch(args.read_batch_ms / 1000.0)
        s_prev = await pool.snapshot()
        t_prev = time.perf_counter()
        t_end = t_prev + args.duration
        all_samples: list[int] = []
        while time.perf_counter() < t_end:
            await asyncio.sleep(min(args.interval, max(0.0, t_end - time.perf_counter())))
            s = await pool.snapshot()
            t = time.perf_counter()
            dt = t - t_prev
            lat = latency_summary(s.samples_ns)
            all_samples.extend(s.samples_ns)
            _emit(
                "tick",
                frames_per_s=round((s.frames - s_prev.frames) / dt, 1),
                open=s.open,
                closed=s.closed,
                p50_ms=lat["p50_ms"],
                p99_ms=lat["p99_ms"],
                client_cpu=round((s.cpu_s - s_prev.cpu_s) / dt, 3),
            )
            s_prev, t_prev = s, t
        final = await pool.snapshot()
        result = {
            "connect": csum,
            "frames": final.frames,
            "open": final.open,
            "closed": final.closed,
            "app_pings": final.app_pings,
            "close_codes": final.close_codes,
            "errors": final.errors,
            "latency": latency_summary(all_samples + final.samples_ns),
            "client_rss_mib": round(final.rss / 2**20, 1),
        }
        await pool.close()
        return result
    finally:
        await pool.stop()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("url", help="ws://host:port/path")
    ap.add_argument("-n", type=int, default=100, help="sockets")
    ap.add_argument(
        "-P",
        "--procs",
        type=int,
        default=1,
        help="worker processes (0: in this process)",
    )
    ap.add_argument(
        "--send",
        action="append",
        default=[],
        help="text frame to send after the upgrade ({i}: socket index); repeatable",
    )
    ap.add_argument(
        "--ready-after",
        type=int,
        default=0,
        help="replies to wait for before a socket is ready",
    )
    ap.add_argument("--subprotocol", action="append", default=[])
    ap.add_argument("--header", action="append", default=[], help="Name:value; repeatable")
    ap.add_argument("--concurrency", type=int, default=200, help="handshakes in flight")
    ap.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="per-socket connect+ready timeout (s)",
    )
    ap.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="seconds to hold the sockets and count frames",
    )
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument(
        "--read-batch-ms",
        type=float,
        default=0.0,
        help="once connected, block this long between I/O polls (coalesced reads)",
    )
    ap.add_argument("--sample-every", type=int, default=50, help="latency sample 1 frame in N")
    args = ap.parse_args(argv)
    raise_nofile(args.n + 1024)
    result = uvloop.run(_cli(args))
    print("RESULT " + json.dumps(result, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
