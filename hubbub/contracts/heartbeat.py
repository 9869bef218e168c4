"""A worker's heartbeat: how hubs learn that a worker died with requests in flight.

A request sent to the workers' queue group reaches one worker, and the hub cannot tell
which. A worker killed outright (SIGKILL, out of memory, its host gone) never answers
the requests it held, and without more their callers wait out the whole deadline.
So each worker says it is alive on ``ctl.worker.<id>`` (core NATS, JSON) every
``every`` seconds while it takes requests, and that it is ``leaving`` once it has
finished them on a graceful stop::

    {"worker": "<id>", "every": 1.0}
    {"worker": "<id>", "every": 1.0, "leaving": true}

A hub that hears nothing from a worker for ``MISSED_BEATS`` beats counts it lost and
sends its reads in flight again (``hub/worker_watch.py``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

HEARTBEAT_S = 1.0  # how often a worker beats
MISSED_BEATS = 3  # a worker silent for this many beats is lost


class WorkerBeat(BaseModel):
    model_config = ConfigDict(frozen=True)

    worker: str = Field(min_length=1, max_length=64)
    every: float = Field(gt=0, le=60)  # seconds to the next beat
    leaving: bool = False


worker_beat: TypeAdapter[WorkerBeat] = TypeAdapter(WorkerBeat)
