"""Service API keys: the table, the check the hub asks for, and the operator commands."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from datetime import UTC, datetime

from sqlalchemy import String, Uuid, func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from handlers.context import Context
from handlers.db import Base, Timestamped
from handlers.registry import Registry
from hubbub.contracts.api import apikeys as api
from hubbub.contracts.api.apikeys import KEY_PREFIX, AuthenticateKeyParams, ServiceIdentity
from hubbub.contracts.channels import ChannelKind
from hubbub.contracts.errors import BadRequest, Conflict, NotFound, Unauthorized

registry = Registry()

_PATTERN = re.compile(r"(?P<kind>[a-z]+):(?P<name>[A-Za-z0-9_-]{1,64}|\*)")
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


class ApiKey(Timestamped, Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(
        String(12)
    )  # the key's first characters, to tell keys apart
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    channels: Mapped[list[str]] = mapped_column(JSONB)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_patterns(patterns: list[str]) -> list[str]:
    if not patterns:
        raise BadRequest("a key needs at least one channel pattern, like public:* or ticker:prices")
    kinds = {k.value for k in ChannelKind}
    for pattern in patterns:
        match = _PATTERN.fullmatch(pattern)
        if match is None or match["kind"] not in kinds:
            raise BadRequest(
                f"{pattern!r} is not a channel pattern: <kind>:<name> or <kind>:*, "
                f"kind one of {sorted(kinds)}"
            )
    return patterns


async def create_key(session: AsyncSession, name: str, patterns: list[str]) -> tuple[ApiKey, str]:
    """A new key; the plain key is returned once and never stored."""
    if not _NAME.fullmatch(name):
        raise BadRequest(
            "a key name is 1-64 characters of a-z 0-9 _ . - (starting with a letter or digit)"
        )
    check_patterns(patterns)
    if await session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise Conflict(f"a key named {name!r} exists already")
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, prefix=plain[:12], key_hash=digest(plain), channels=patterns)
    session.add(key)
    await session.flush()
    return key, plain


async def revoke_key(session: AsyncSession, name: str) -> ApiKey:
    key = await session.scalar(select(ApiKey).where(ApiKey.name == name))
    if key is None:
        raise NotFound(f"no key named {name!r}")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
    return key


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    return list((await session.scalars(select(ApiKey).order_by(ApiKey.created_at))).all())


@registry.handler(api.authenticate)
async def authenticate(ctx: Context, params: AuthenticateKeyParams) -> ServiceIdentity:
    key = await ctx.session.scalar(
        select(ApiKey).where(ApiKey.key_hash == params.key_hash, ApiKey.revoked_at.is_(None))
    )
    if key is None:
        raise Unauthorized("unknown or revoked API key")
    await ctx.session.execute(
        update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=func.now())
    )
    return ServiceIdentity(name=key.name, channels=list(key.channels))
