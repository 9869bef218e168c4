"""Channel operations the hub asks workers for: may this user use this channel?"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from hubbub.contracts.operations import Access, Catalog, Operation


class ChannelAction(StrEnum):
    SUBSCRIBE = "subscribe"
    PUBLISH = "publish"


class AuthorizeParams(BaseModel):
    user_id: str
    channel: str = Field(max_length=80)
    action: ChannelAction = ChannelAction.SUBSCRIBE


class Authorization(BaseModel):
    allowed: bool
    role: str | None = None  # the user's role where the channel belongs to a workspace
    reason: str | None = None


catalog = Catalog()

authorize = catalog.add(
    Operation(
        name="channels.authorize",
        params=AuthorizeParams,
        result=Authorization,
        access=Access.INTERNAL,
        summary="May this user subscribe to (or publish on) this channel?",
        timeout=3.0,
    )
)
