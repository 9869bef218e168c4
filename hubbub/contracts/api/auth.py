"""Authentication: accounts, sessions (an access JWT and a rotating refresh token),
email verification and password reset by mail.

Registering answers the same for a new and a taken email (202): a new address gets a
verification link, a taken one a note to its owner — so the answer says nothing about
who has an account. An account may sign in before it is verified, but it cannot answer
an invitation until it is (docs/auth.md).

A session starts at login. Its access token is a short-lived JWT the hub checks by
itself; its refresh token is opaque, single-use and rotated by every ``auth.refresh``.
Presenting a refresh token that was already rotated ends the whole session: one of its
two holders is a thief, and neither may go on. Browsers get the refresh token in an
HttpOnly cookie instead of the body (see ``hub/session_cookie.py``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from hubbub.contracts.api.users import DisplayName, Email, NewPassword, Password, UserPublic
from hubbub.contracts.errors import ErrorCode
from hubbub.contracts.operations import Access, Catalog, Empty, Http, NoParams, Operation

# Opaque tokens we hand out are 43 characters; the bound only stops absurd input early.
OpaqueToken = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterParams(_Params):
    email: Email
    password: NewPassword
    display_name: DisplayName


class LoginParams(_Params):
    email: Email
    password: Password


class RefreshParams(_Params):
    refresh_token: OpaqueToken


class LogoutParams(_Params):
    refresh_token: OpaqueToken | None = Field(
        default=None, description="The session to end; else the access token's session"
    )


class ResetRequestParams(_Params):
    email: Email


class ResetConfirmParams(_Params):
    token: OpaqueToken
    new_password: NewPassword


class VerifyEmailParams(_Params):
    token: OpaqueToken


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type, no secret
    expires_in: int = Field(description="Seconds the access token stays valid")
    refresh_token: str | None = Field(
        default=None, description="Absent when it was set as the HttpOnly cookie instead"
    )
    refresh_expires_in: int = Field(description="Seconds the refresh token stays valid")
    user: UserPublic


class ResetRequested(BaseModel):
    detail: str = "If an account has this email, a reset link is on its way."


class RegisterAccepted(BaseModel):
    """The same for every email: whether it was free or taken shows only in the mailbox."""

    detail: str = "Check your mail: we sent a link to confirm this address."


class VerificationSent(BaseModel):
    detail: str = "A new verification link is on its way."


catalog = Catalog()

register = catalog.add(
    Operation(
        name="auth.register",
        params=RegisterParams,
        result=RegisterAccepted,
        access=Access.PUBLIC,
        http=Http("POST", "/auth/register", status=202),
        summary="Create an account and mail a verification link (same answer for a taken email)",
        tags=("auth",),
        errors=(ErrorCode.RATE_LIMITED,),
    )
)
login = catalog.add(
    Operation(
        name="auth.login",
        params=LoginParams,
        result=TokenPair,
        access=Access.PUBLIC,
        http=Http("POST", "/auth/login"),
        summary="Start a session: an access token and a refresh token",
        tags=("auth",),
        errors=(ErrorCode.UNAUTHORIZED, ErrorCode.FORBIDDEN, ErrorCode.RATE_LIMITED),
    )
)
refresh = catalog.add(
    Operation(
        name="auth.refresh",
        params=RefreshParams,
        result=TokenPair,
        access=Access.PUBLIC,
        http=Http("POST", "/auth/refresh"),
        summary="Trade a refresh token for a new pair (the old one stops working)",
        tags=("auth",),
        errors=(ErrorCode.UNAUTHORIZED, ErrorCode.FORBIDDEN),
    )
)
logout = catalog.add(
    Operation(
        name="auth.logout",
        params=LogoutParams,
        result=Empty,
        access=Access.PUBLIC,
        http=Http("POST", "/auth/logout", status=204),
        summary="End this session (named by its refresh token or the access token)",
        tags=("auth",),
        errors=(ErrorCode.UNAUTHORIZED, ErrorCode.FORBIDDEN),
    )
)
logout_all = catalog.add(
    Operation(
        name="auth.logout_all",
        params=NoParams,
        result=Empty,
        access=Access.USER,
        http=Http("POST", "/auth/logout-all", status=204),
        summary="End every session of the signed-in user",
        tags=("auth",),
    )
)
reset_request = catalog.add(
    Operation(
        name="auth.reset_request",
        params=ResetRequestParams,
        result=ResetRequested,
        access=Access.PUBLIC,
        http=Http("POST", "/auth/password-reset/request", status=202),
        summary="Mail a password-reset link (same answer whether or not the email exists)",
        tags=("auth",),
        errors=(ErrorCode.RATE_LIMITED,),
    )
)
reset_confirm = catalog.add(
    Operation(
        name="auth.reset_confirm",
        params=ResetConfirmParams,
        result=Empty,
        access=Access.PUBLIC,
        http=Http("POST", "/auth/password-reset/confirm", status=204),
        summary="Set a new password with a reset token; ends every session",
        tags=("auth",),
    )
)
verify_email = catalog.add(
    Operation(
        name="auth.verify_email",
        params=VerifyEmailParams,
        result=Empty,
        access=Access.PUBLIC,
        http=Http("POST", "/auth/verify-email", status=204),
        summary="Confirm the account's email address with the mailed token",
        tags=("auth",),
        errors=(ErrorCode.BAD_REQUEST,),
    )
)
resend_verification = catalog.add(
    Operation(
        name="auth.resend_verification",
        params=NoParams,
        result=VerificationSent,
        access=Access.USER,
        http=Http("POST", "/auth/verify-email/resend", status=202),
        summary="Mail the signed-in user a new verification link",
        tags=("auth",),
        errors=(ErrorCode.CONFLICT, ErrorCode.RATE_LIMITED),
    )
)
