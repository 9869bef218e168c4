"""What one small TCP send costs on this machine's loopback (a floor, not a benchmark of Hubbub).

A WebSocket server that writes one frame per subscriber pays at least one
``send()`` system call per delivery; on loopback that call also runs the
receiving side's TCP processing.  This opens ``--sockets`` connected pairs
and sends ``--rounds`` small frames (``--size`` bytes) on each server-side
socket from a plain Python loop (receivers do not read while it runs), with
TCP_NODELAY as aiohttp and uvloop set it.  1 / (time per send) is an upper
bound for deliveries per second from one core by any server that does one
send per delivery.  ``python -m bench.loopback_floor``.
"""

from __future__ import annotations

import argparse
import json
import socket
import time

from bench.wsload import raise_nofile


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    ap.add_argument("--sockets", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--size", type=int, default=100, help="payload bytes per frame")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--nodelay", type=int, default=1, choices=(0, 1))
    a = ap.parse_args(argv)
    raise_nofile(2 * a.sockets + 64)
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4096)
    clients: list[socket.socket] = []
    servers: list[socket.socket] = []
    for _ in range(a.sockets):
        clients.append(socket.create_connection(ls.getsockname()))
        s, _ = ls.accept()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, a.nodelay)
        servers.append(s)
    for c in clients:
        c.setblocking(False)
    msg = bytes((0x81, min(a.size, 125))) + b"x" * min(a.size, 125)
    n = a.sockets * a.rounds
    best = float("inf")
    for _ in range(a.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(a.rounds):
            for s in servers:
                s.send(msg)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        best = min(best, wall / n)
        print(
            f"sends={n} wall_s={wall:.3f} us_per_send={wall / n * 1e6:.2f} "
            f"cpu_us_per_send={cpu / n * 1e6:.2f} sends_per_s={n / wall:.0f}",
            flush=True,
        )
        for c in clients:  # empty the receive queues
            try:
                while c.recv(1 << 20):
                    pass
            except BlockingIOError:
                pass
    for x in clients + servers + [ls]:
        x.close()
    res = {
        "bench": "loopback_floor",
        "sockets": a.sockets,
        "frame_bytes": len(msg),
        "nodelay": a.nodelay,
        "best_us_per_send": round(best * 1e6, 3),
        "best_sends_per_s": round(1 / best),
    }
    print("RESULT " + json.dumps(res, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
