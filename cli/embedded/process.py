"""Child processes that cannot outlive their parent, free ports to put them on, and the
last lines of what a child wrote."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

_PR_SET_PDEATHSIG = 1
_libc = (
    ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if sys.platform == "linux"
    else None
)


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn``: the kernel sends ``sig`` to the child when its parent dies, so
    even a SIGKILLed ``hubbub up`` leaves no server behind."""

    def preexec() -> None:
        if _libc is not None:
            _libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)

    return preexec


def batch_scheduling() -> None:
    """Put the calling process under Linux's ``SCHED_BATCH`` policy (inherited by its
    threads and children); a no-op where there is none, or where it is refused.

    The embedded servers run so: they share the host's cores with the hubs and workers.
    A ``SCHED_BATCH`` process still gets its fair share of CPU, but its wake-ups do not
    preempt the running process: a hub's write to NATS no longer hands the core to
    nats-server in the middle of the hub's loop turn, nor a worker's query the core to
    PostgreSQL. Each finishes its turn, and the server runs on a free core or after it.
    The effect on throughput, CPU per request and latency is measured by
    ``python -m bench.sched_ab`` (bench/README.md). Servers with hosts of their own are
    not concerned.
    """
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError):  # allowed to unprivileged processes; harmless if not
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def embedded_server_child(death_signal: int = signal.SIGTERM) -> Callable[[], None]:
    """The ``preexec_fn`` of an embedded server: it dies with its parent
    (``die_with_parent``) and runs under ``SCHED_BATCH`` (``batch_scheduling``)."""
    die = die_with_parent(death_signal)

    def preexec() -> None:
        die()
        batch_scheduling()

    return preexec


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Can a server listen on ``port``? Probed the way asyncio's servers bind (with
    SO_REUSEADDR), so the TIME_WAIT connections a just-stopped hub leaves behind do not
    count as taken; a listener does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def wait_for_port(
    host: str, port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"process exited with code {proc.returncode} before listening on {port}"
            )
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on {host}:{port} within {timeout:g}s")


def spawn(
    argv: Sequence[str | Path],
    *,
    log_path: Path,
    death_signal: int = signal.SIGTERM,
    user: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start an embedded server (``embedded_server_child``), its output appended to
    ``log_path``, a file only its owner reads (0600, ``private_log``)."""
    log = private_log(log_path)
    try:
        return subprocess.Popen(
            [str(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=embedded_server_child(death_signal),
            user=user,
            env=env,
            cwd=cwd,
            start_new_session=True,  # Ctrl-C reaches us, and we stop the children in order
        )
    finally:
        log.close()


def run_group(
    argv: Sequence[str | Path],
    *,
    input: str | bytes | None = None,
    capture_output: bool = False,
    check: bool = False,
    timeout: float | None = None,
    stop_timeout: float = 5.0,
    **popen: Any,
) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run`` for a child that starts children of its own (npm, initdb): the
    same output and return code, but the child leads a process group of its own, and
    when anything interrupts the wait (``hubbub up``'s stop, Ctrl-C, ``timeout``) the
    whole group is stopped (``stop_group``) before the exception goes on. subprocess.run
    would SIGKILL the child alone, and its children would run on without it (a parent's
    death signal reaches its children only, not theirs)."""
    if capture_output:
        popen["stdout"] = popen["stderr"] = subprocess.PIPE
    if input is not None:
        popen["stdin"] = subprocess.PIPE
    args = [str(a) for a in argv]
    with subprocess.Popen(args, start_new_session=True, **popen) as proc:
        try:
            stdout, stderr = proc.communicate(input, timeout=timeout)
        except BaseException:
            stop_group(proc, stop_timeout)
            raise
        code = proc.returncode
    if check and code:
        raise subprocess.CalledProcessError(code, args, stdout, stderr)
    return subprocess.CompletedProcess(args, code, stdout, stderr)


def stop_group(proc: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """Stop the process group ``proc`` leads: SIGTERM to all of it; whatever of it still
    runs after ``timeout`` seconds is SIGKILLed. Returns once ``proc`` is reaped and no
    process of the group runs (or, past a further second, what is left is SIGKILLed)."""
    group = proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout)
    # The leader is gone (or late); its children may still be finishing.
    _wait_group(group, deadline - time.monotonic())
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    proc.wait()
    _wait_group(group, 1.0)  # a SIGKILL is delivered, not waited for


def _wait_group(group: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _group_runs(group) and time.monotonic() < deadline:
        time.sleep(0.02)


def _group_runs(group: int) -> bool:
    """Does a process of ``group`` still run? One that has ended but is not reaped yet (a
    zombie, its parent's or init's to reap) does not."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # a member that is not ours to signal: it still runs
            return True
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == group and fields[0] not in ("Z", "X"):
            return True
    return False


def private_folder(path: Path) -> None:
    """Create ``path`` so that only its owner can enter it (0700), and narrow one this user
    already has that is wider (an earlier version, a umask): an embedded server's data
    folder, whatever the folders above it let other users do. One of another owner (as
    root, the embedded PostgreSQL's system user's) is left as it is."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid == os.getuid() and info.st_mode & 0o077:
        path.chmod(0o700)


def private_log(path: Path) -> IO[bytes]:
    """``path`` opened for appending, a file only its owner can read (0600): created so,
    or narrowed when an earlier version left it wider. A server's log names users,
    queries and subjects."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    info = os.fstat(fd)
    if info.st_uid == os.getuid() and info.st_mode & 0o077:
        os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


def stop_process(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10.0
) -> None:
    """Signal, wait, then kill: never return while the process still runs."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, sig)
    wait_or_kill(proc, timeout)


def command_line(pid: int) -> list[str] | None:
    """The arguments ``pid`` runs with, from ``/proc``; None when they cannot be read (the
    process is gone, or there is no ``/proc``)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]


def wait_or_kill(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for a process already told to stop; past ``timeout``, kill it and its group.
    Not signalled again: a second SIGTERM cuts an aiohttp server's graceful stop short
    (``run_app``, and the hub's ``run_hub`` as it, cancel every task on it)."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


class OutputTail:
    """Reads a child's output (a pipe) line by line on a thread of its own: each line is
    passed on to ``echo`` at once, whole, and the last ``keep`` are kept, so a supervisor
    can say what a child wrote before it stopped. Ends when the child closes the pipe."""

    def __init__(self, stream: IO[bytes], echo: IO[bytes] | None, keep: int = 20) -> None:
        self._stream = stream
        self._echo = echo
        self._last: deque[bytes] = deque(maxlen=keep)
        self._thread = threading.Thread(target=self._pump, name="output-tail", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        with self._stream:
            for line in self._stream:
                self._last.append(line)
                if self._echo is not None:
                    try:
                        self._echo.write(line)
                        self._echo.flush()
                    except (OSError, ValueError):  # our own output is gone: keep the tail
                        self._echo = None

    def lines(self, wait: float = 1.0) -> list[str]:
        """The last lines, after waiting up to ``wait`` seconds for the pipe's end (the
        child has exited: what it wrote last is still on its way)."""
        self._thread.join(wait)
        return [line.decode(errors="replace").rstrip("\r\n") for line in list(self._last)]
