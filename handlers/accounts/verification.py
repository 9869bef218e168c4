"""Email verification: ``auth.verify_email`` and ``auth.resend_verification``.

``auth.register`` mails a link to the new address (``start``); following it proves the
address and sets ``users.email_verified_at``. The token is handled like a reset token
(``handlers/accounts/reset.py``): 256 random bits in the link's fragment, stored as its
SHA-256 digest, valid for ``email_verification_ttl_s``, single-use — verifying spends
every outstanding verification token of the user. A completed password reset verifies
too (it proves the mailbox just as well).

Why it matters: invitations go to an email, and only a verified account with that email
may answer one — so someone who registers ``newhire@corp.com`` before the admin invites
it gets nothing (``handlers/workspaces/invitations.py``).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from handlers import ratelimit
from handlers.accounts import mailed_tokens
from handlers.accounts.models import EmailVerificationToken, User
from handlers.accounts.users import current_user
from handlers.context import Context
from handlers.mail import Mail, send_mail
from handlers.registry import Registry
from hubbub.contracts.api import auth as api
from hubbub.contracts.api.auth import VerifyEmailParams
from hubbub.contracts.errors import BadRequest, Conflict
from hubbub.contracts.operations import Empty, NoParams

registry = Registry()
VERIFY_PATH = "/verify-email"  # the SPA's page; the token travels in the URL fragment


def verification_mail(ctx: Context, email: str, token: str) -> Mail:
    hours = max(1, ctx.settings.email_verification_ttl_s // 3600)
    link = f"{ctx.settings.base_url}{VERIFY_PATH}#token={token}"
    return Mail(
        to=email,
        subject="Confirm your email address for Hubbub",
        body=(
            "Someone (hopefully you) created a Hubbub account with this email address.\n\n"
            f"Confirm that it is yours here, within {hours} hours:\n{link}\n\n"
            f"Or use this verification token: {token}\n\n"
            "If you did not create an account, ignore this mail: without the confirmation "
            "the account cannot join any workspace.\n"
        ),
    )


def already_registered_mail(ctx: Context, email: str) -> Mail:
    base = ctx.settings.base_url
    return Mail(
        to=email,
        subject="Your Hubbub account",
        body=(
            "Someone (hopefully you) tried to create a Hubbub account with this email "
            "address, which already has one. Nothing was changed.\n\n"
            f"If it was you, sign in here: {base}/login\n"
            f"Forgot your password? Choose a new one here: {base}/forgot-password\n\n"
            "If it was not you, ignore this mail.\n"
        ),
    )


def start(ctx: Context, user: User) -> None:
    """Store a new verification token for ``user`` and mail its link (with the
    request's transaction, like every mail)."""
    ttl_s = ctx.settings.email_verification_ttl_s
    token = mailed_tokens.issue(ctx, EmailVerificationToken, user.id, ttl_s)
    send_mail(ctx, verification_mail(ctx, user.email, token))


async def mark_verified(ctx: Context, user: User, at: datetime) -> None:
    """The address is proven: record it and spend the user's outstanding links."""
    if user.email_verified_at is None:
        user.email_verified_at = at
    await spend_verification_tokens(ctx, user.id, at)


async def spend_verification_tokens(ctx: Context, user_id: uuid.UUID, at: datetime) -> None:
    await mailed_tokens.spend_all(ctx, EmailVerificationToken, user_id, at)


@registry.handler(api.verify_email)
async def verify_email(ctx: Context, params: VerifyEmailParams) -> Empty:
    invalid = BadRequest("this verification link is invalid, used or expired; ask for a new one")
    user, at = await mailed_tokens.redeem(ctx, EmailVerificationToken, params.token, invalid)
    await mark_verified(ctx, user, at)
    return Empty()


@registry.handler(api.resend_verification)
async def resend_verification(ctx: Context, params: NoParams) -> api.VerificationSent:
    user = await current_user(ctx, lock=True)
    if user.email_verified_at is not None:
        raise Conflict("this email address is verified already")
    await ratelimit.hit(
        ctx.redis,
        [
            ratelimit.Limit(
                ctx.keys.key("rl", "verify", "user", str(user.id)), ctx.settings.rate_verify_user
            )
        ],
    )
    start(ctx, user)
    return api.VerificationSent()
