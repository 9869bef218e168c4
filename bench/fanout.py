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
import asyncio
import contextlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import uvloop

from bench.targets import Target, make_target, ratio, split_options
from bench.wsload import ClientPool, Snapshot, latency_summary, raise_nofile

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def make_payload(seq: int, size: int) -> bytes:
    """A JSON object of about ``size`` bytes with the send time in ``"t"``."""
    head = b'{"t":%d,"seq":%d,"pad":"' % (time.time_ns(), seq)
    pad = max(0, size - len(head) - 2)
    return head + b"x" * pad + b'"}'


class Publisher:
    """Open-loop publisher: issues publications on a fixed schedule."""

    def __init__(
        self,
        target: Target,
        channel: str,
        payload: int,
        max_inflight: int,
        subscribers: int,
    ) -> None:
        self.target = target
        self.channel = channel
        self.payload = payload
        self.max_inflight = max_inflight
        self.subscribers = subscribers
        self.seq = 0
        self.issued = 0
        self.accepted = 0
        self.errors = 0
        self.skipped = 0
        self.expected_frames = 0
        self.inflight = 0
        self.last_error = ""
        self._tasks: set[asyncio.Task[None]] = set()

    def reset(self) -> None:
        self.issued = self.accepted = self.errors = self.skipped = self.expected_frames = 0

    async def _one(self) -> None:
        self.seq += 1
        try:
            sent = await self.target.publish(self.channel, make_payload(self.seq, self.payload))
        except Exception as e:
            self.errors += 1
            self.last_error = f"{type(e).__name__}: {e}"[:200]
        else:
            self.accepted += 1
            self.expected_frames += self.subscribers if sent is None else sent
        finally:
            self.inflight -= 1

    async def run(self, rate: float, secs: float) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        k = 0
        while True:
            now = loop.time()
            if now - t0 >= secs:
                break
            due = int((now - t0) * rate) + 1
            while k < due:
                k += 1
                if self.inflight >= self.max_inflight:
                    self.skipped += 1
                    continue
                self.inflight += 1
                self.issued += 1
                t = asyncio.create_task(self._one())
                self._tasks.add(t)
                t.add_done_callback(self._tasks.discard)
            await asyncio.sleep(max(0.0, t0 + k / rate - loop.time()))

    async def wait_idle(self, timeout: float) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)


@dataclass
class Probe:
    """CPU counters at one instant."""

    t: float
    server_cpu: float
    server_sys: float
    self_cpu: float
    machine_busy: float
    machine_total: float
    machine_irq: float
    snap: Snapshot


def _proc_cpu(pids: list[int]) -> tuple[float, float]:
    """CPU seconds (user + system, system) of these processes."""
    total = sys_ = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            ct = psutil.Process(pid).cpu_times()
            total += ct.user + ct.system
            sys_ += ct.system
    return total, sys_


def _machine() -> tuple[float, float, float]:
    """Machine-wide CPU seconds: (busy, total, interrupts) summed over all cores."""
    ct = psutil.cpu_times()
    total = sum(ct)
    irq = getattr(ct, "irq", 0.0) + getattr(ct, "softirq", 0.0)
    return total - ct.idle - getattr(ct, "iowait", 0.0), total, irq


@dataclass
class StepResult:
    rate: float
    secs: float
    pubs_per_s: float
    skipped: int
    pub_errors: int
    deliveries_per_s: float
    expected_per_s: float
    delivery_ratio: float
    latency: dict[str, float | None]
    server_cpu: float  # cores (1.0 = one core busy)
    server_sys: float  # the kernel's part of server_cpu
    client_cpu: float
    client_sys: float
    pub_cpu: float
    machine_busy: float  # fraction of all cores
    irq_cpu: float  # cores in (soft)irq context (loopback TCP); included above
    other_cpu: float  # cores busy in other processes (noise: other work on the machine)
    drain_s: float | None  # None: not drained within --drain-timeout
    lost: int
    ok: bool
    why: list[str] = field(default_factory=list)
    noisy: bool = False  # other processes used more than --noise-limit cores
    target: dict[str, Any] = field(default_factory=dict)  # Target.diagnostics()
    attempts: int = 1


class FanoutBench:
    def __init__(self, args: argparse.Namespace, target: Target, pool: ClientPool) -> None:
        self.a = args
        self.target = target
        self.pool = pool
        self.pub = Publisher(
            target, args.channel, args.payload, args.max_inflight, args.subscribers
        )

    async def probe(self, take_samples: bool = True) -> Probe:
        snap = await self.pool.snapshot(take_samples)
        busy, total, irq = _machine()
        cpu, sys_ = _proc_cpu(self.target.server_pids())
        return Probe(
            time.perf_counter(),
            cpu,
            sys_,
            time.process_time(),
            busy,
            total,
            irq,
            snap,
        )

    async def step(self, rate: float, secs: float) -> StepResult:
        a = self.a
        self.pub.reset()
        base = await self.probe()
        run = asyncio.create_task(self.pub.run(rate, secs))
        await asyncio.sleep(a.warm_secs)
        self.target.diagnostics()  # reset
        p1 = await self.probe()
        issued1 = self.pub.issued
        await asyncio.sleep(max(0.0, secs - a.warm_secs - 0.05))
        p2 = await self.probe()
        issued2 = self.pub.issued
        diag = self.target.diagnostics()
        await run
        t_stop = time.perf_counter()
        await self.pub.wait_idle(timeout=30.0)
        expected_total = base.snap.frames + self.pub.expected_frames
        drain_s: float | None = None
        frames = p2.snap.frames
        deadline = t_stop + a.drain_timeout
        while time.perf_counter() < deadline:
            s = await self.pool.snapshot(take_samples=False)
            frames = s.frames
            if frames >= expected_total:
                drain_s = time.perf_counter() - t_stop
                break
            await asyncio.sleep(0.02)
        dt = p2.t - p1.t
        issued = issued2 - issued1
        frames_w = p2.snap.frames - p1.snap.frames
        pubs_per_s = issued / dt
        deliveries = frames_w / dt
        expected = pubs_per_s * a.subscribers
        ratio = deliveries / expected if expected else 0.0
        lat = latency_summary(p2.snap.samples_ns)
        mt = p2.machine_total - p1.machine_total
        busy = (p2.machine_busy - p1.machine_busy) / mt if mt > 0 else 0.0
        ncpu = psutil.cpu_count() or 1
        irq_cpu = (p2.machine_irq - p1.machine_irq) / dt
        server_cpu = (p2.server_cpu - p1.server_cpu) / dt
        client_cpu = (p2.snap.cpu_s - p1.snap.cpu_s) / dt
        pub_cpu = (p2.self_cpu - p1.self_cpu) / dt
        r = StepResult(
            rate=round(rate, 2),
            secs=secs,
            pubs_per_s=round(pubs_per_s, 2),
            skipped=self.pub.skipped,
            pub_errors=self.pub.errors,
            deliveries_per_s=round(deliveries, 1),
            expected_per_s=round(expected, 1),
            delivery_ratio=round(ratio, 4),
            latency=lat,
            server_cpu=round(server_cpu, 3),
            server_sys=round((p2.server_sys - p1.server_sys) / dt, 3),
            client_cpu=round(client_cpu, 3),
            client_sys=round((p2.snap.cpu_sys_s - p1.snap.cpu_sys_s) / dt, 3),
            pub_cpu=round(pub_cpu, 3),
            machine_busy=round(busy, 3),
            irq_cpu=round(irq_cpu, 3),
            other_cpu=round(
                max(0.0, busy * ncpu - server_cpu - client_cpu - pub_cpu),
                3,
            ),
            drain_s=None if drain_s is None else round(drain_s, 3),
            lost=max(0, expected_total - frames),
            ok=True,
            target=diag,
        )
        why = r.why
        # Window edges shift counts by one publication: allow for it.
        if issued < 0.95 * rate * dt - 1:
            why.append("publisher_behind")
        if r.skipped:
            why.append("inflight_cap")
        if r.pub_errors:
            why.append("publish_errors")
        if frames_w < 0.95 * (issued - 1) * a.subscribers:
            why.append("deliveries_behind")
        p99 = lat["p99_ms"]
        p50 = lat["p50_ms"]
        if p50 is None or p50 > a.p50_limit_ms:
            why.append("p50")
        if p99 is None or p99 > a.p99_limit_ms:
            why.append("p99")
        if drain_s is None or drain_s > a.drain_limit:
            why.append("drain")
        if r.lost:
            why.append("lost")
        r.ok = not why
        if not r.ok:
            # Let a backlog clear before the next step.
            await asyncio.sleep(1.0)
        return r

    @staticmethod
    def emit(kind: str, r: StepResult) -> None:
        lat = r.latency
        print(
            f"{kind} rate={r.rate} pubs/s={r.pubs_per_s} deliveries/s={r.deliveries_per_s} "
            f"ratio={r.delivery_ratio} p50_ms={lat['p50_ms']} p99_ms={lat['p99_ms']} max_ms={lat['max_ms']} "
            f"server_cpu={r.server_cpu} server_sys={r.server_sys} "
            f"client_cpu={r.client_cpu} client_sys={r.client_sys} pub_cpu={r.pub_cpu} "
            f"machine_busy={r.machine_busy} irq_cpu={r.irq_cpu} other_cpu={r.other_cpu} drain_s={r.drain_s} lost={r.lost} skipped={r.skipped} "
            f"ok={'yes' if r.ok else 'no'}"
            + (f" why={','.join(r.why)}" if r.why else "")
            + (" noisy=yes" if r.noisy else "")
            + "".join(f" {k}={v}" for k, v in r.target.items()),
            flush=True,
        )

    async def other_load(self, secs: float = 0.5) -> float:
        """Cores used by processes other than ours over ``secs`` (other sessions' work)."""
        p1 = await self.probe(take_samples=False)
        await asyncio.sleep(secs)
        p2 = await self.probe(take_samples=False)
        dt = p2.t - p1.t
        mt = p2.machine_total - p1.machine_total
        busy = (p2.machine_busy - p1.machine_busy) / mt if mt > 0 else 0.0
        ours = (
            p2.server_cpu
            - p1.server_cpu
            + p2.snap.cpu_s
            - p1.snap.cpu_s
            + p2.self_cpu
            - p1.self_cpu
        )
        return max(0.0, busy * (psutil.cpu_count() or 1) - ours / dt)

    async def wait_quiet(self) -> None:
        """Wait (up to --quiet-timeout s) until other processes leave the CPUs alone."""
        deadline = time.perf_counter() + self.a.quiet_timeout
        while True:
            other = await self.other_load()
            if other <= self.a.noise_limit:
                return
            if time.perf_counter() > deadline:
                print(f"busy_machine other_cpu={other:.3f} waited=timeout", flush=True)
                return

    async def measured(self, kind: str, rate: float, secs: float) -> StepResult:
        """A step, repeated (up to --retries times) while other work disturbed it."""
        attempts = 0
        while True:
            attempts += 1
            await self.wait_quiet()
            r = await self.step(rate, secs)
            r.attempts = attempts
            r.noisy = r.other_cpu > self.a.noise_limit
            if not r.noisy or attempts > self.a.retries:
                self.emit(kind, r)
                return r
            self.emit("noisy", r)
            await asyncio.sleep(self.a.noise_wait)

    async def confirmed(self, rate: float, steps: list[StepResult]) -> StepResult:
        """A search step; one that fails is tried again (--confirm times) before it counts."""
        for attempt in range(self.a.confirm + 1):
            r = await self.measured("step" if attempt == 0 else "confirm", rate, self.a.step_secs)
            steps.append(r)
            if r.ok:
                return r
        return r

    async def run(self) -> dict[str, Any]:
        a = self.a
        steps: list[StepResult] = []

        # Warm-up: not reported as a step.
        w = await self.step(a.start_rate, min(2.0, a.step_secs))
        self.emit("warmup", w)

        good: StepResult | None = None
        bad: StepResult | None = None
        rate = a.start_rate
        while rate <= a.max_rate:
            r = await self.confirmed(rate, steps)
            if r.ok:
                good = r
                rate *= 2
            else:
                bad = r
                break
        if good is not None and bad is not None:
            for _ in range(a.bisect):
                mid = (good.rate + bad.rate) / 2
                r = await self.confirmed(mid, steps)
                if r.ok:
                    good = r
                else:
                    bad = r
        # Steps disturbed by other work (after all retries) only count if
        # nothing else is left.
        clean = [s for s in steps if not s.noisy] or steps
        peak = max(clean, key=lambda s: s.deliveries_per_s)
        if a.read_batch_ms > 0:
            await self.pool.set_read_batch(0.0)  # batching would add latency
        lat_rate = a.latency_rate or a.latency_at * peak.deliveries_per_s / a.subscribers
        lat_step = await self.measured("latency", lat_rate, a.latency_secs)
        return {
            "saturation_deliveries_per_s": peak.deliveries_per_s,
            "saturation_step": asdict(peak),
            "max_sustainable_deliveries_per_s": good.deliveries_per_s if good else None,
            "max_sustainable_rate": good.rate if good else None,
            "first_unsustainable": asdict(bad) if bad else None,
            "latency_step": asdict(lat_step),
            "steps": [asdict(s) for s in steps],
            "warmup": asdict(w),
        }


def _pin(target: Target, pool: ClientPool) -> dict[str, list[int]]:
    """Server on CPU 0, clients and publisher on the other CPUs."""
    cpus = list(range(psutil.cpu_count() or 1))
    if len(cpus) < 2:
        return {}
    rest = cpus[1:]
    for pid in target.server_pids():
        psutil.Process(pid).cpu_affinity([0])
    for pid in pool.pids:
        psutil.Process(pid).cpu_affinity(rest)
    psutil.Process().cpu_affinity(rest)
    return {"server": [0], "clients": rest, "publisher": rest}


def _bottleneck(r: dict[str, Any]) -> str:
    s = r["saturation_step"]
    if r["first_unsustainable"] is None:
        return "not reached (every step was sustainable: raise --max-rate)"
    if s["server_cpu"] >= 0.9:
        return "server (its process is CPU-bound at saturation)"
    if s["machine_busy"] >= 0.9:
        return "machine (all cores busy, server below one core: clients/publisher compete for CPU)"
    if s["client_cpu"] >= 0.9 * max(1, s.get("client_procs", 1)):
        return "client"
    return "unclear (neither the server nor the machine is saturated)"


async def amain(a: argparse.Namespace, spec: str, options: list[str]) -> dict[str, Any]:
    raise_nofile(a.subscribers + 1024)
    target = make_target(spec, options)
    pool = ClientPool(a.procs, a.sample_every, seed=1)
    await target.start()
    try:
        await pool.start()
        pinned = _pin(target, pool) if a.pin else {}
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
        res["bottleneck"] = _bottleneck(res)
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
        help="bare (default), or package.module:Class; repeatable: every target runs "
        "in turn and ratios against the first (the baseline) are printed",
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
        f"latency_rate={res['latency_step']['rate']} p50_ms={lat['p50_ms']} "
        f"p99_ms={lat['p99_ms']} bottleneck={json.dumps(res['bottleneck'])} "
        f"json={os.path.relpath(out)}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    specs: list[str] = a.target or ["bare", "hubbub"]
    opts = split_options(specs, a.target_opt)
    runs: list[dict[str, Any]] = []
    for spec in specs:
        res = uvloop.run(amain(a, spec, opts[spec]))
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
        }
        ratios.append(q)
        print("ratio " + " ".join(f"{k}={v}" for k, v in q.items()), flush=True)
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
