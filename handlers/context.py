"""What a handler gets to do its work: who asks, a database session, Redis, and ``emit``.

Handlers are plain async functions ``(ctx, params) -> result``. They know nothing of
HTTP, sockets or NATS: the worker runtime builds the context, commits the session when
the handler returns, and rolls it back when it raises.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.outbox import OutboxEvent
from hubbub.config import Settings
from hubbub.contracts.channels import Channel
from hubbub.contracts.envelope import Caller
from hubbub.contracts.errors import Unauthorized
from hubbub.contracts.events import Event
from hubbub.contracts.subjects import Subjects
from hubbub.keys import RedisKeys


@dataclass(eq=False)
class Context:
    caller: Caller
    request_id: str
    settings: Settings
    redis: Redis
    keys: RedisKeys
    subjects: Subjects
    sessions: async_sessionmaker[AsyncSession]
    idempotency_key: str | None = None
    deadline: float | None = None  # unix time after which the caller stopped waiting
    emitted: list[OutboxEvent] = field(default_factory=list)
    _session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        """The request's session, opened on first use; the runtime commits it."""
        if self._session is None:
            self._session = self.sessions()
        return self._session

    @property
    def has_session(self) -> bool:
        return self._session is not None

    @property
    def user_id(self) -> str:
        """The signed-in caller's user id; ``Unauthorized`` for anyone else."""
        if not self.caller.is_user or self.caller.user_id is None:
            raise Unauthorized("sign in first")
        return self.caller.user_id

    def emit(self, channel: Channel, event_type: str, data: dict[str, Any]) -> Event:
        """Record an event in the outbox, in this transaction: published iff it commits."""
        event = Event(
            id=uuid.uuid4().hex,
            type=event_type,
            channel=str(channel),
            at=datetime.now(UTC),
            actor=self.caller.user_id,
            request_id=self.request_id,
            data=data,
        )
        row = OutboxEvent(
            channel=str(channel), event_type=event_type, payload=event.model_dump(mode="json")
        )
        self.session.add(row)
        self.emitted.append(row)
        return event
