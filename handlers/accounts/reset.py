"""Password reset by mail: ``auth.reset_request`` and ``auth.reset_confirm``.

The request answers the same whether or not the email has an account (and the mail
goes out after the reply, so timing says little either). The token is 256 random bits
in the link, stored as its SHA-256 digest, valid for ``password_reset_ttl_s``, and
single-use: confirming consumes it — and every other outstanding reset token of the
user — sets the new password, ends every session and marks the email verified (the link
proved the mailbox).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from handlers import ratelimit
from handlers.accounts import mailed_tokens, sessions, signin, verification
from handlers.accounts.models import PasswordResetToken
from handlers.accounts.passwords import PASSWORD_HASHER
from handlers.accounts.policy import check_password
from handlers.accounts.users import by_email
from handlers.context import Context
from handlers.mail import Mail, send_mail
from handlers.registry import Registry
from hubbub.contracts.api import auth as api
from hubbub.contracts.api.auth import ResetConfirmParams, ResetRequestParams
from hubbub.contracts.errors import BadRequest
from hubbub.contracts.operations import Empty

registry = Registry()
RESET_PATH = "/reset-password"  # the SPA's page; the token travels in the URL fragment


def reset_mail(ctx: Context, email: str, token: str) -> Mail:
    minutes = ctx.settings.password_reset_ttl_s // 60
    link = f"{ctx.settings.base_url}{RESET_PATH}#token={token}"
    return Mail(
        to=email,
        subject="Reset your Hubbub password",
        body=(
            "Someone (hopefully you) asked to reset the password of your Hubbub account.\n\n"
            f"Choose a new password here, within {minutes} minutes:\n{link}\n\n"
            f"Or use this reset token: {token}\n\n"
            "If you did not ask, ignore this mail: your password stays as it is.\n"
        ),
    )


@registry.handler(api.reset_request)
async def reset_request(ctx: Context, params: ResetRequestParams) -> api.ResetRequested:
    # Counted like sign-ins (docs/auth.md, "Lock-out policy"): a stranger's requests for
    # this email use up the stranger's budgets; the per-account one (which keeps a mailbox
    # from being flooded) does not apply to an IP that signed in to the account lately.
    # A request that fails for a reason of ours (PostgreSQL away) sent nothing: it is
    # taken back.
    settings = ctx.settings
    counted = await signin.count_attempt(
        ctx,
        "reset",
        params.email,
        ip=settings.rate_reset_ip,
        account_ip=settings.rate_reset_account_ip,
        account=settings.rate_reset_account,
    )
    async with signin.given_back_on_outage(ctx, counted):
        user = await by_email(ctx.session, params.email)
        if user is not None and user.is_active:
            ttl_s = ctx.settings.password_reset_ttl_s
            token = mailed_tokens.issue(ctx, PasswordResetToken, user.id, ttl_s)
            send_mail(ctx, reset_mail(ctx, user.email, token))
        return api.ResetRequested()


@registry.handler(api.reset_confirm)
async def reset_confirm(ctx: Context, params: ResetConfirmParams) -> Empty:
    """The token is checked (a lookup session of its own, closed again), then the new
    password hashed ``outside_transaction`` — argon2 holds no transaction slot,
    connection or row lock — and only then is the token redeemed, in the request's
    transaction: one used meanwhile refuses as any used one does. An invalid token is
    refused before any argon2 work, as before."""
    invalid = BadRequest("this reset link is invalid, used or expired; ask for a new one")
    async with ctx.sessions() as lookup:
        owner = await mailed_tokens.owner(lookup, PasswordResetToken, params.token)
        email = None if owner is None else owner.email
    if email is None:
        raise invalid
    check_password(params.new_password, email, field="new_password")
    async with ctx.outside_transaction():
        password_hash = await ctx.resource(PASSWORD_HASHER).hash(params.new_password)
    user, at = await mailed_tokens.redeem(ctx, PasswordResetToken, params.token, invalid)
    user.password_hash = password_hash
    user.password_changed_at = at
    await spend_reset_tokens(ctx, user.id, at)
    # The link came by mail: the address is proven, and this IP is its owner's.
    await verification.mark_verified(ctx, user, at)
    await ratelimit.remember_ip(ctx, user.email)
    await sessions.revoke(ctx, user.id, reason="password_reset")
    return Empty()


async def spend_reset_tokens(ctx: Context, user_id: uuid.UUID, at: datetime) -> None:
    """Every outstanding reset link of the user stops working: a new password (by reset
    or by change) makes a link mailed for the old one pointless, and a live link in a
    mailbox someone else reads would undo the change."""
    await mailed_tokens.spend_all(ctx, PasswordResetToken, user_id, at)
