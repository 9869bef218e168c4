"""CPU and memory of processes and of the machine, read from the kernel (psutil): the
one CPU probe of bench/."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import psutil


def process_cpu(pids: Iterable[int]) -> tuple[float, float]:
    """CPU seconds (user + system, and the system part) of these processes, summed; a
    process that is gone counts nothing."""
    total = sys_ = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            ct = psutil.Process(pid).cpu_times()
            total += ct.user + ct.system
            sys_ += ct.system
    return total, sys_


def cpu_writes_preempted(proc: psutil.Process) -> tuple[float, int, int]:
    """CPU seconds (user + system), write system calls and involuntary context switches
    (preempted while it had work) of ``proc``, so far."""
    return (
        process_cpu([proc.pid])[0],
        proc.io_counters().write_count,
        proc.num_ctx_switches().involuntary,
    )


def machine_cpu() -> tuple[float, float, float]:
    """Machine-wide CPU seconds: (busy, total, interrupts) summed over all cores."""
    ct = psutil.cpu_times()
    total = sum(ct)
    irq = getattr(ct, "irq", 0.0) + getattr(ct, "softirq", 0.0)
    return total - ct.idle - getattr(ct, "iowait", 0.0), total, irq


def rss(pids: Iterable[int]) -> int:
    """Resident memory (bytes) of these processes, summed."""
    total = 0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            total += psutil.Process(pid).memory_info().rss
    return total


def cpus() -> int:
    return psutil.cpu_count() or 1
