"""Dependency outages: which failures mean "PostgreSQL / Redis / NATS is unreachable",
the answer a caller gets for them, and a tracker that logs each outage once.

An outage is not a bug: the caller hears ``unavailable`` (503) with ``retry_after`` and
may try again, and the log gets one warning when a dependency goes away and one line
when it is back — not a traceback per request. The classifiers for Redis and NATS live
here; the PostgreSQL one is on the worker side (``handlers/db.py``), since the hub has
no database driver.

``Health`` is the tracker. ``went_down`` is called by whoever saw the failure; the
dependency is back when its probe (a ``PING``, a ``SELECT 1``) succeeds, or when
``came_back`` is called by code that just used it successfully. On the hot path the
only cost is ``if health.down:`` — a dict's truth value. A dependency the caller has
never seen working is not "gone" when it does not answer: ``waiting_for`` records it
with an info line, and a warning only if the wait lasts.
"""

from __future__ import annotations

import ast
import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import nats.errors
import nats.js.errors
import redis.exceptions

from hubbub.contracts.errors import Unavailable
from hubbub.log_every import LogEvery

log = logging.getLogger(__name__)

POSTGRES = "postgresql"
REDIS = "redis"
NATS = "nats"

RETRY_AFTER_S = 1  # what an outage answer suggests; short: most outages are restarts
PROBE_FIRST_S = 0.25  # a down dependency is probed after this, doubling …
PROBE_MAX_S = 2.0  # … up to this
SATURATION_LOG_S = 10.0  # at most one "saturated" line per dependency this often
WAITING_WARN_S = 30.0  # a dependency never seen working, waited for this long: a warning


class Outage(NamedTuple):
    """What a failure says about a dependency."""

    dependency: str
    # True: it is unreachable (refused, reset, closed, restarting). False: it answers but
    # has no capacity left (a pool without a free connection): 503 all the same, but the
    # dependency is not "down" and nothing is logged as an outage.
    down: bool = True


def unavailable(outage: Outage, request_id: str | None = None) -> Unavailable:
    """The caller's answer to a request that failed on ``outage``. The dependency is not
    named: which server is down is the operator's business (the log says it)."""
    message = (
        "a service this request needs is unreachable; retry shortly"
        if outage.down
        else "a service this request needs is saturated; retry shortly"
    )
    details: dict[str, Any] = {"retry_after": RETRY_AFTER_S}
    if request_id is not None:
        details["request_id"] = request_id
    return Unavailable(message, **details)


def causes(exc: BaseException, limit: int = 8) -> Iterator[BaseException]:
    """``exc`` and what it wraps: a DBAPI ``orig``, ``__cause__``, ``__context__``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < limit:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        current = (
            orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
        )


def raised_in(exc: BaseException, *modules: str) -> bool:
    """Whether ``exc``'s traceback passes through code of one of ``modules`` (top-level
    package names): a bare ``ConnectionRefusedError`` is a database outage only if the
    database driver raised it."""
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_globals.get("__name__", "")
        if isinstance(name, str) and name.partition(".")[0] in modules:
            return True
        tb = tb.tb_next
    return False


_REDIS_CONFIG_ERRORS = (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError)

# What a failing Redis call raises: redis-py's errors, and the OSErrors a few of its paths
# let through unwrapped. Which of them mean Redis is away is ``redis_outage``'s to say;
# the rest are bugs (a wrong type, a script error).
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)

# Error replies of a Redis that answers but takes no writes for now: out of memory under a
# ``noeviction`` policy (OOM), a failed save with ``stop-writes-on-bgsave-error``
# (MISCONF), fewer replicas than ``min-replicas-to-write`` (NOREPLICAS), a read-only
# replica after a failover (READONLY). Its ``PING`` still answers.
_REDIS_REFUSING = frozenset({"OOM", "MISCONF", "NOREPLICAS", "READONLY"})
# …and of one that answers nothing but this for now: loading its data after a restart
# (LOADING), a replica that lost its master (MASTERDOWN), a script running too long (BUSY).
_REDIS_AWAY = frozenset({"LOADING", "MASTERDOWN", "BUSY"})
# redis-py strips the code off the replies it has a class for (OOM, READONLY, MASTERDOWN,
# LOADING): those are told by their class. A command run by a Lua script fails with the
# code first on Redis 7, within "Error running script …: -OOM …" on Redis 6.
_REPLY_CODE = re.compile(r"(?:^|: -)([A-Z]+) ")
_REDIS_REFUSING_TYPES = (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError)
# A reply to a command of a pipeline, as redis-py rewrites it: "Command # <n> (<the
# command, shortened>) of pipeline caused error: <the reply's args, a tuple's repr>". The
# command may hold anything (user data): only the repr after the last marker is read.
_PIPELINED = re.compile(r"Command # \d+ \(.*\) of pipeline caused error: (\(.*\))", re.S)


def _reply_text(exc: redis.exceptions.ResponseError) -> str:
    """The error reply ``exc`` carries, without redis-py's pipeline wrapping ("" if
    that cannot be read back)."""
    text = str(exc)
    pipelined = _PIPELINED.fullmatch(text)
    if pipelined is None:
        return text
    try:
        args = ast.literal_eval(pipelined[1])
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return ""
    return args[0] if isinstance(args, tuple) and args and isinstance(args[0], str) else ""


def _reply_code(exc: redis.exceptions.ResponseError) -> str | None:
    """The error code of a reply redis-py had no class for (MISCONF, NOREPLICAS, BUSY),
    or of a command a script ran; in a pipeline too."""
    match = _REPLY_CODE.search(_reply_text(exc))
    return match[1] if match else None


def redis_outage(exc: BaseException) -> Outage | None:
    """Redis refused, reset, timed out, is loading its data after a restart, is a replica
    without its master, or is stuck in a script: down. Redis answers but takes no writes
    (out of memory, cannot persist, too few replicas, a read-only replica): saturated, as
    when the pool had no free connection in time — its ``PING`` answers, so it is not
    "down", but nothing written gets through."""
    for cause in causes(exc):
        if isinstance(cause, _REDIS_CONFIG_ERRORS):
            return None  # wrong credentials: a configuration error, not an outage
        if isinstance(cause, redis.exceptions.ConnectionError):
            # redis-py's BlockingConnectionPool, when every connection stays busy.
            saturated = str(cause).startswith("No connection available")
            return Outage(REDIS, down=not saturated)
        if isinstance(cause, redis.exceptions.TimeoutError | redis.exceptions.MasterDownError):
            return Outage(REDIS)
        if isinstance(cause, _REDIS_REFUSING_TYPES):
            return Outage(REDIS, down=False)
        if isinstance(cause, redis.exceptions.ResponseError):
            code = _reply_code(cause)
            if code in _REDIS_REFUSING:
                return Outage(REDIS, down=False)
            if code in _REDIS_AWAY:
                return Outage(REDIS)
        if isinstance(cause, OSError) and raised_in(cause, "redis"):
            return Outage(REDIS)  # a socket error redis-py let through
    return None


_NATS_DOWN = (
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.StaleConnectionError,  # and UnexpectedEOF
    nats.errors.NoServersError,
    nats.js.errors.ServiceUnavailableError,  # JetStream answered 503
)


def nats_outage(exc: BaseException) -> Outage | None:
    """The NATS connection is closed, reconnecting, stale, or over its outbound buffer;
    no server could be reached; JetStream said it is unavailable."""
    for cause in causes(exc):
        if isinstance(cause, _NATS_DOWN):
            return Outage(NATS)
    return None


Probe = Callable[[], Awaitable[object]]


class ProbeTimeout(Exception):
    """A probe did not finish in its time. Probes wait longer than any pool waits for a
    free connection, so a busy pool has said so by then with an error of its own
    (saturated); this is a server that does not answer (paused, cut off, frozen)."""


async def probe_within(probe: Probe, timeout: float) -> None:
    """Run ``probe``; ``ProbeTimeout`` if it has not finished after ``timeout`` seconds."""
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            await probe()
    except TimeoutError:
        if deadline.expired():
            raise ProbeTimeout(f"no answer within {timeout:g} s") from None
        raise


@dataclass(slots=True)
class Down:
    since: float  # the tracker's clock (monotonic)
    error: str  # the failure that showed it, for the log and /ready
    first: bool = False  # never seen working: waited for (``waiting_for``), not gone
    warned: bool = False  # a first wait that went on: its warning is logged


def _error_text(exc: BaseException | str) -> str:
    return (exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}")[:300]


class Health:
    """Which dependencies are down, as this process sees them; logs each change once."""

    def __init__(
        self,
        probes: dict[str, Probe] | None = None,
        *,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.probes = dict(probes or {})
        self.log = logger or log
        self.clock = clock
        self.down: dict[str, Down] = {}  # empty while all is well: ``if health.down``
        self._probing: dict[str, asyncio.Task[None]] = {}
        self._nudge = asyncio.Event()
        self._saturated: dict[str, LogEvery] = {}  # per dependency: its "saturated" line

    def went_down(self, name: str, exc: BaseException | str) -> bool:
        """Record that ``name`` failed; logs a warning if that is news. Returns whether
        it was. A probe, if ``name`` has one, then watches for it to come back."""
        if name in self.down:
            return False
        error = _error_text(exc)
        self.down[name] = Down(self.clock(), error)
        self.log.warning(
            "%s went away: %s", name, error, extra={"dependency": name, "error": error}
        )
        self._watch(name)
        return True

    def waiting_for(self, name: str, exc: BaseException | str) -> bool:
        """Record that ``name``, never seen working by the caller, does not answer yet
        (the workers, to a hub that has just started before them): down as
        ``went_down`` records it, but an info line, not a "went away" warning, since
        nothing went. A wait that lasts ``WAITING_WARN_S`` is a warning, once. Returns
        whether the wait is news."""
        down = self.down.get(name)
        if down is None:
            error = _error_text(exc)
            self.down[name] = Down(self.clock(), error, first=True)
            self.log.info(
                "waiting for %s: %s", name, error, extra={"dependency": name, "error": error}
            )
            self._watch(name)
            return True
        waited = self.clock() - down.since
        if down.first and not down.warned and waited >= WAITING_WARN_S:
            down.warned = True
            self.log.warning(
                "still waiting for %s after %.0f s: %s",
                name,
                waited,
                down.error,
                extra={"dependency": name, "error": down.error, "down_s": round(waited, 3)},
            )
        return False

    def _watch(self, name: str) -> None:
        """Start ``name``'s probe, if it has one and it is not running."""
        probe = self.probes.get(name)
        if probe is not None and name not in self._probing:
            try:
                task = asyncio.get_running_loop().create_task(
                    self._probe(name, probe), name=f"probe-{name}"
                )
            except RuntimeError:  # no loop (a synchronous caller): came_back will do
                pass
            else:
                self._probing[name] = task

    def came_back(self, name: str) -> bool:
        """Record that ``name`` works; logs one line if it was down. Returns whether it was."""
        if not self.down:
            return False
        down = self.down.pop(name, None)
        if down is None:
            return False
        took = self.clock() - down.since
        self.log.info(
            "%s answered after %.1f s" if down.first else "%s came back after %.1f s",
            name,
            took,
            extra={"dependency": name, "down_s": round(took, 3)},
        )
        return True

    def failed(self, outage: Outage, exc: BaseException) -> None:
        """Record a failure the classifiers recognised: down, or only saturated."""
        if outage.down:
            self.went_down(outage.dependency, exc)
        else:
            self.saturated(outage.dependency, exc)

    def saturated(self, name: str, exc: BaseException) -> None:
        """Record that ``name`` had no capacity for a request (its pool was exhausted), or
        takes no writes (Redis: OOM, MISCONF, NOREPLICAS, READONLY):
        a warning at most every ``SATURATION_LOG_S`` per dependency, with the count."""
        lines = self._saturated.get(name)
        if lines is None:
            lines = self._saturated[name] = LogEvery(SATURATION_LOG_S, clock=self.clock)
        error = f"{type(exc).__name__}: {exc}"[:300]

        def line(count: int) -> None:
            self.log.warning(
                "%s is saturated: %s (%d time(s) since the last such line)",
                name,
                error,
                count,
                extra={"dependency": name, "count": count},
            )

        lines.add(line)

    def is_down(self, name: str) -> bool:
        return name in self.down

    def nudge(self) -> None:
        """Something just worked: let the probes look now instead of at their next turn."""
        self._nudge.set()

    def status(self) -> dict[str, dict[str, Any]]:
        """The dependencies that are down: name → since how long, and the error."""
        now = self.clock()
        return {
            name: {"down_s": round(now - d.since, 3), "error": d.error}
            for name, d in self.down.items()
        }

    async def _probe(self, name: str, probe: Probe) -> None:
        pause = PROBE_FIRST_S
        try:
            while name in self.down:
                self._nudge.clear()
                try:
                    async with asyncio.timeout(pause):
                        await self._nudge.wait()
                except TimeoutError:
                    pass
                try:
                    await probe_within(probe, max(1.0, pause))
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # A timeout too: it does not show the dependency back (a host that
                    # drops packets times out as well). At least a first pause between
                    # failed probes, nudged or not: a worker whose requests succeed
                    # without this dependency nudges often.
                    await asyncio.sleep(PROBE_FIRST_S)
                    pause = min(pause * 2, PROBE_MAX_S)
                    continue
                self.came_back(name)
        finally:
            self._probing.pop(name, None)

    async def close(self) -> None:
        tasks = list(self._probing.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._probing.clear()  # a task cancelled before it started never ran its finally
        for lines in self._saturated.values():
            lines.flush()  # a count still waiting for its line is told now
