"""Single-use tokens that go out by mail (a password reset, an email verification): issued
as a digest row with an expiry, redeemed (the row by the token's digest, locked; unused,
unexpired, and its user active — or one ``BadRequest`` that does not say which of these
failed), and spent all at once."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.accounts import sessions
from handlers.accounts.models import EmailVerificationToken, PasswordResetToken, User
from handlers.accounts.users import by_id
from handlers.context import Context
from hubbub.contracts.errors import BadRequest
from hubbub.tokens import new_opaque_token

MailedToken = TypeVar("MailedToken", PasswordResetToken, EmailVerificationToken)


async def redeem(
    ctx: Context,
    model: type[MailedToken],
    token: str,
    invalid: BadRequest,
) -> tuple[User, datetime]:
    """The token's user, row-locked, and the time it was redeemed at; ``invalid`` if the
    token is unknown, used, expired, or its user deactivated."""
    row = (
        await ctx.session.execute(
            select(model).where(model.token_hash == sessions.digest(token)).with_for_update()
        )
    ).scalar_one_or_none()
    at = sessions.now()
    if row is None or row.used_at is not None or row.expires_at <= at:
        raise invalid
    user = await by_id(ctx.session, row.user_id, lock=True)
    if not user.is_active:
        raise invalid
    return user, at


async def owner(session: AsyncSession, model: type[MailedToken], token: str) -> User | None:
    """The user of a token ``redeem`` would take now, read without locks (for work to do
    before the transaction that redeems it); None if it would refuse the token."""
    row = (
        await session.execute(select(model).where(model.token_hash == sessions.digest(token)))
    ).scalar_one_or_none()
    if row is None or row.used_at is not None or row.expires_at <= sessions.now():
        return None
    user = await session.get(User, row.user_id)
    return user if user is not None and user.is_active else None


def issue(ctx: Context, model: type[MailedToken], user_id: uuid.UUID, ttl_s: float) -> str:
    """Store a new token of ``model`` for the user, valid ``ttl_s``; the token to mail."""
    token = new_opaque_token()
    ctx.session.add(
        model(
            token_hash=sessions.digest(token),
            user_id=user_id,
            expires_at=sessions.now() + timedelta(seconds=ttl_s),
        )
    )
    return token


async def spend_all(
    ctx: Context, model: type[MailedToken], user_id: uuid.UUID, at: datetime
) -> None:
    """Every outstanding token of ``model`` the user has stops working."""
    await ctx.session.execute(
        update(model).where(model.user_id == user_id, model.used_at.is_(None)).values(used_at=at)
    )
