"""The shape of a domain event as published on a channel.

Workers write events into the outbox; the relay publishes them on ``evt.<channel>``.
Backend services may publish any JSON object on their channels; domain events always
have this shape so clients can switch on ``type``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Unique event id; also the de-duplication id on NATS")
    type: str = Field(examples=["resource.created"])
    channel: str
    at: datetime
    actor: str | None = Field(default=None, description="User id that caused it")
    request_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
