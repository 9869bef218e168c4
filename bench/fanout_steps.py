"""One measured step of the fan-out benchmark (a publication rate held for some
seconds), the noise guard around it, and the search for saturation over steps.
``bench/fanout.py`` is the command line."""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

from bench.probes import cpus, machine_cpu, process_cpu
from bench.publisher import Publisher
from bench.stats import latency_summary
from bench.targets import Target
from bench.wsclient import ClientPool, Snapshot


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
    server_us_per_delivery: float | None  # server CPU µs per frame delivered
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
        busy, total, irq = machine_cpu()
        cpu, sys_ = process_cpu(self.target.server_pids())
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
        ncpu = cpus()
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
            server_us_per_delivery=round(server_cpu / deliveries * 1e6, 2) if deliveries else None,
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
            f"server_cpu={r.server_cpu} server_sys={r.server_sys} us/delivery={r.server_us_per_delivery} "
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
        return max(0.0, busy * cpus() - ours / dt)

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
            # Server CPU per delivery at saturation, and at the latency step's rate (the
            # same rate for every target of a run: like with like).
            "us_per_delivery_at_saturation": peak.server_us_per_delivery,
            "us_per_delivery_at_latency_rate": lat_step.server_us_per_delivery,
            "saturation_step": asdict(peak),
            "max_sustainable_deliveries_per_s": good.deliveries_per_s if good else None,
            "max_sustainable_rate": good.rate if good else None,
            "first_unsustainable": asdict(bad) if bad else None,
            "latency_step": asdict(lat_step),
            "steps": [asdict(s) for s in steps],
            "warmup": asdict(w),
        }


def pin(target: Target, pool: ClientPool) -> dict[str, list[int]]:
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


def bottleneck(r: dict[str, Any]) -> str:
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
