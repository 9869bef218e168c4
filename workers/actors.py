"""The actor core: one mailbox per key, one message at a time per key, many keys at once.

Failure policy, spelled out (after pykka's ``_actor.py``):

* A job that raises: the job is responsible for turning its own failure into an error
  reply (``Job.run`` never lets a handler's exception escape). If something escapes
  anyway — a bug in the runtime — the actor logs it and goes on with the next message:
  one bad message never stalls its key.
* A mailbox that is full: ``tell`` raises ``MailboxFull`` at once and the caller replies
  ``unavailable``. Nothing is dropped silently.
* Too many messages in the whole process (``max_in_flight``): the same.
* Stop: ``drain`` stops nothing by itself — the owner first stops taking messages — then
  waits for the queued and running jobs; what is still queued at the deadline is
  *rejected* (each job answers ``unavailable`` with the reason ``NOT_STARTED``, which the
  hub sends to another worker), what is still running is cancelled (its transaction
  rolls back and it answers ``unavailable``). Never dropped.
* Idle actors are passivated: an actor whose mailbox has been empty for ``idle_timeout``
  seconds (by the system's ``clock``) is forgotten by the periodic sweep
  (``passivate_idle``); its next message starts a new one.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from hubbub.contracts.errors import NOT_STARTED, HubbubError, Unavailable
from workers.eager import start_eager

log = logging.getLogger(__name__)


class Job(Protocol):
    async def run(self) -> None:
        """Do the work and send its reply, success or error."""

    async def reject(self, error: HubbubError) -> None:
        """Answer with ``error`` without doing the work."""


class MailboxFull(Exception):
    pass


# Marks an actor whose loop is starting eagerly, so a re-entrant tell() doesn't start a
# second loop for the same key.
_STARTING: Any = object()


class Actor:
    __slots__ = ("key", "last_active", "mailbox", "running")

    def __init__(self, key: Hashable, now: float) -> None:
        self.key = key
        self.mailbox: deque[Job] = deque()
        self.running: asyncio.Task[None] | None = None
        self.last_active = now


class ActorSystem:
    def __init__(
        self,
        *,
        mailbox_size: int = 64,
        max_in_flight: int = 256,
        idle_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sweep_interval: float | None = None,
    ) -> None:
        """``clock`` (seconds, monotonic) times idleness; ``sweep_interval`` is how often
        the sweep started by ``start`` runs (default: half the idle timeout)."""
        self.mailbox_size = mailbox_size
        self.max_in_flight = max_in_flight
        self.idle_timeout = idle_timeout
        self.sweep_interval = (
            max(idle_timeout / 2, 0.05) if sweep_interval is None else sweep_interval
        )
        self._clock = clock
        self.actors: dict[Hashable, Actor] = {}
        self.in_flight = 0  # queued + running, keyed or not
        self.rejected = 0  # messages refused with MailboxFull (for /metrics)
        self._unkeyed: set[asyncio.Task[None]] = set()
        # Set by ``drain`` while it waits for in_flight to reach 0; None otherwise, so the
        # hot path pays one comparison, not an Event's two method calls a job.
        self._idle: asyncio.Event | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the one the jobs run on

    # --- taking messages ---------------------------------------------------------------

    def tell(self, key: Hashable | None, job: Job) -> None:
        """Queue ``job`` behind the other jobs of ``key`` (or run it at once if no key).

        Raises ``MailboxFull`` when the key's mailbox or the process is at its bound.
        """
        if self.in_flight >= self.max_in_flight:
            self.rejected += 1
            raise MailboxFull(f"{self.in_flight} messages in flight (limit {self.max_in_flight})")
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        # Jobs start eagerly (see workers/eager.py): an idle actor runs its job right here
        # until the job first waits; the rest of the mailbox follows in a task.
        if key is None:
            self.in_flight += 1
            # The job's own coroutine, not one wrapped around it: a wrapper would be one
            # more frame to create, and to pass through each time the job resumes.
            try:
                task = start_eager(job.run(), loop=loop)
            except Exception:
                log.exception("a job escaped its own error handling")
                task = None
            except BaseException:
                self._done()
                raise
            if task is None:
                self._done()
            else:
                self._unkeyed.add(task)
                task.add_done_callback(self._unkeyed_done)
            return
        actor = self.actors.get(key)
        if actor is None:
            actor = self.actors[key] = Actor(key, self._clock())
        elif len(actor.mailbox) >= self.mailbox_size:
            self.rejected += 1
            raise MailboxFull(f"mailbox of {key!r} is full ({self.mailbox_size})")
        self.in_flight += 1
        mailbox = actor.mailbox
        mailbox.append(job)
        if actor.running is not None:
            return
        # An idle actor runs its first job now (inline, not a method: this runs once a
        # request). Most finish before they wait: then the actor is idle again at once,
        # with no coroutine of its own to create and drive.
        actor.running = _STARTING
        try:
            task = start_eager(job.run(), loop=loop)
        except Exception:
            log.exception("a job escaped its own error handling", extra={"key": str(key)})
            task = None
        except BaseException:
            # Not the job's to stop (KeyboardInterrupt, SystemExit): it is over, the actor
            # goes on with what was told meanwhile, and the exception on its way.
            self._finish(actor, job)
            if mailbox:
                actor.running = start_eager(self._run_actor(actor), loop=loop)
            else:
                actor.running = None
                actor.last_active = self._clock()
            raise
        if task is not None:  # it waits: the actor goes on when it is done
            task.add_done_callback(functools.partial(self._resume, actor, job))
            actor.running = task
            return
        mailbox.popleft()  # the job, still at the head: nothing ran in between
        self._done()
        if mailbox:  # told while it ran
            actor.running = start_eager(self._run_actor(actor), loop=loop)
        else:
            actor.running = None
            actor.last_active = self._clock()

    def _resume(self, actor: Actor, job: Job, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "a job escaped its own error handling",
                exc_info=task.exception(),
                extra={"key": str(actor.key)},
            )
        self._finish(actor, job)
        if actor.mailbox:
            actor.running = start_eager(self._run_actor(actor), loop=self._loop)
        else:
            actor.running = None
            actor.last_active = self._clock()

    def _finish(self, actor: Actor, job: Job) -> None:
        mailbox = actor.mailbox
        if mailbox and mailbox[0] is job:  # a drain may have emptied it meanwhile
            mailbox.popleft()
        self._done()

    def _unkeyed_done(self, task: asyncio.Task[Any]) -> None:
        self._unkeyed.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a job escaped its own error handling", exc_info=task.exception())
        self._done()

    async def _run_actor(self, actor: Actor) -> None:
        mailbox = actor.mailbox
        try:
            while mailbox:
                job = mailbox[0]  # stays visible in the mailbox until finished
                try:
                    await job.run()
                except Exception:
                    log.exception(
                        "a job escaped its own error handling", extra={"key": str(actor.key)}
                    )
                finally:
                    self._finish(actor, job)
        finally:
            actor.running = None
            actor.last_active = self._clock()

    def _done(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0 and self._idle is not None:
            self._idle.set()

    # --- passivation -------------------------------------------------------------------

    def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            self.passivate_idle()

    def passivate_idle(self) -> int:
        """Forget actors idle for ``idle_timeout``; returns how many were forgotten."""
        cutoff = self._clock() - self.idle_timeout
        idle = [
            key
            for key, actor in self.actors.items()
            if actor.running is None and not actor.mailbox and actor.last_active <= cutoff
        ]
        for key in idle:
            del self.actors[key]
        return len(idle)

    # --- stopping ----------------------------------------------------------------------

    async def drain(self, timeout: float) -> bool:
        """Wait for every queued and running job; at the deadline reject or cancel the rest.

        Returns True when everything finished in time.
        """
        try:
            if self.in_flight:
                self._idle = asyncio.Event()
                async with asyncio.timeout(timeout):
                    await self._idle.wait()
            finished = True
        except TimeoutError:
            finished = False
            await self._abandon()
        finally:
            self._idle = None
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        return finished

    async def _abandon(self) -> None:
        # Never started: the hub sends them to another worker.
        error = Unavailable("the worker is shutting down; retry", reason=NOT_STARTED)
        rejections = []
        for actor in self.actors.values():
            # the head of each mailbox is running; everything behind it never started
            queued = list(actor.mailbox)[1:] if actor.running else list(actor.mailbox)
            for job in queued:
                actor.mailbox.remove(job)
                rejections.append(job.reject(error))
                self._done()
        results = await asyncio.gather(*rejections, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.error("rejecting a queued job failed", exc_info=result)
        running = [a.running for a in self.actors.values() if a.running] + list(self._unkeyed)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
