"""Domain events: the envelope every one travels in, and what an event type is.

Workers write events into the outbox; the relay publishes them on ``evt.<channel>``.
Backend services may publish any JSON object on their channels; domain events always
have the ``Event`` shape so clients can switch on ``type``. Every type a handler emits is
an ``EventType`` of the catalog in ``hubbub/contracts/event_types.py``: its name, the
model of its ``data`` and the channel kinds it goes to. ``Context.emit`` takes one, so
no handler can emit a type the catalog (and the AsyncAPI document) does not know.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hubbub.contracts.channels import ChannelKind


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Unique event id; also the de-duplication id on NATS")
    type: str = Field(examples=["resource.created"])
    channel: str
    at: datetime
    actor: str | None = Field(default=None, description="User id that caused it")
    request_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EventType:
    """One kind of domain event: ``name`` is the envelope's ``type`` (``<subject>.<verb>``),
    ``data`` the model of its ``data`` object, ``channels`` the kinds it is published on."""

    name: str
    data: type[BaseModel]
    channels: tuple[ChannelKind, ...]
    summary: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z_]+\.[a-z_]+", self.name):
            raise ValueError(f"event type {self.name!r} must be <subject>.<verb>")
        if not self.channels:
            raise ValueError(f"event type {self.name!r} goes to no channel kind")

    def __str__(self) -> str:
        return self.name
