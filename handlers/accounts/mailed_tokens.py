"""Redeeming a single-use token that came by mail (a password reset, an email
verification): the row by the token's digest, locked; unused, unexpired, and its user
active — or one ``BadRequest`` that does not say which of these failed."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from sqlalchemy import select

from handlers.accounts import sessions
from handlers.accounts.models import EmailVerificationToken, PasswordResetToken, User
from handlers.accounts.users import by_id
from handlers.context import Context
from hubbub.contracts.errors import BadRequest

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
