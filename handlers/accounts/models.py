"""Accounts' tables: users, their sessions, refresh tokens, password-reset and
email-verification tokens.

A session (``auth_sessions``) is one sign-in on one device: its id is the ``sid`` claim of
every access token issued for it, and the unit that logout and the deny-list revoke. Its
refresh tokens form a chain: each refresh marks the presented token used and issues the
next. A used token presented again means a stolen token — the whole session is revoked.
Tokens are stored as SHA-256 digests: they are 256 random bits, so a fast hash suffices
and a leaked table yields nothing usable.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Uuid,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from handlers.db import Base, Timestamped


class User(Timestamped, Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), server_default=text("'member'"))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)
    password_changed_at: Mapped[datetime | None] = mapped_column(default=None)
    # When the owner of the address proved it (a verification or reset link); None until
    # then. Invitations are answered only by verified accounts (docs/auth.md).
    email_verified_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        CheckConstraint("role IN ('admin', 'member')", name="role"),
        CheckConstraint("email = lower(email)", name="email_lowercase"),
    )


class AuthSession(Timestamped, Base):
    __tablename__ = "auth_sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    last_refreshed_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(40), default=None)
    created_ip: Mapped[str | None] = mapped_column(String(45), default=None)

    __table_args__ = (
        Index("ix_auth_sessions_user_live", "user_id", postgresql_where=text("revoked_at IS NULL")),
        # What retention looks for (handlers/retention.py): revoked long ago…
        Index(
            "ix_auth_sessions_revoked_at",
            "revoked_at",
            postgresql_where=text("revoked_at IS NOT NULL"),
        ),
    )


# …and past its last possible refresh (an expression index: it needs the mapped columns).
Index(
    "ix_auth_sessions_last_used",
    func.coalesce(AuthSession.last_refreshed_at, AuthSession.created_at),
)


class RefreshToken(Timestamped, Base):
    __tablename__ = "refresh_tokens"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime] = mapped_column(index=True)  # for retention
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class PasswordResetToken(Timestamped, Base):
    __tablename__ = "password_reset_tokens"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime] = mapped_column(index=True)  # for retention
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class EmailVerificationToken(Timestamped, Base):
    """A mailed link that proves the address: like a reset token, single-use, digested."""

    __tablename__ = "email_verification_tokens"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime] = mapped_column(index=True)  # for retention
    used_at: Mapped[datetime | None] = mapped_column(default=None)
