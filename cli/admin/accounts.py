"""``hubbub user create`` (the way to make the first admin) and ``hubbub mail`` (the dev
mail catcher): accounts, straight against the database."""

from __future__ import annotations

import secrets
import sys
from typing import TYPE_CHECKING, TextIO

from cli.admin import database, refuse
from hubbub.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


async def create_user(
    settings: Settings,
    email: str,
    *,
    admin: bool = False,
    password: str | None = None,
    display_name: str | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Create an account; with no password given, generate one and print it once."""
    from pydantic import TypeAdapter, ValidationError

    from handlers.accounts.passwords import PasswordHasher
    from handlers.accounts.users import create_user as insert_user
    from hubbub.contracts.api.users import DisplayName, Email, Role
    from hubbub.contracts.errors import HubbubError

    try:
        email = TypeAdapter(Email).validate_python(email)
        name = TypeAdapter(DisplayName).validate_python(display_name or email.partition("@")[0])
    except ValidationError as exc:
        return refuse(exc.errors()[0]["msg"])
    generated = password is None
    password = password if password is not None else secrets.token_urlsafe(18)
    hasher = PasswordHasher.from_settings(settings)
    try:
        async with database(settings) as session:
            if admin and (promoted := await _promote(session, email, out)) is not None:
                return promoted
            try:
                user = await insert_user(
                    session,
                    hasher,
                    email=email,
                    password=password,
                    display_name=name,
                    role=Role.ADMIN if admin else Role.MEMBER,
                    verified=True,  # the operator vouches for the address
                )
                await session.commit()
            except HubbubError as exc:
                return refuse(exc.message, 1)
    finally:
        hasher.close()
    print(f"created {user.role} {user.email} (id {user.id})", file=out)
    if generated:
        print(f"password: {password}", file=out)
    return 0


async def _promote(session: AsyncSession, email: str, out: TextIO) -> int | None:
    """Make an existing account an admin (its password and sessions stay as they are);
    None if there is no account with that email."""
    from sqlalchemy import func, select

    from handlers.accounts.models import User
    from hubbub.contracts.api.users import Role

    user = await session.scalar(select(User).where(User.email == email).with_for_update())
    if user is None:
        return None
    if user.role == Role.ADMIN:
        print(f"{user.email} is an admin already (id {user.id})", file=out)
        return 0
    user.role = Role.ADMIN
    if user.email_verified_at is None:
        user.email_verified_at = func.now()  # the operator vouches for the address
    await session.commit()
    print(
        f"promoted {user.email} to admin (id {user.id}); its password is unchanged,"
        " and it signs in again to act as one",
        file=out,
    )
    return 0


async def show_mail(settings: Settings, *, limit: int = 10, out: TextIO = sys.stdout) -> int:
    """Print the newest messages of the dev mail catcher, oldest of them first."""
    from handlers.mail import latest_dev_mail

    async with database(settings) as session:
        messages = list(reversed(await latest_dev_mail(session, limit)))
    if not messages:
        print("no mail caught (with HUBBUB_SMTP_HOST set, mail goes out by SMTP)", file=out)
        return 0
    for mail in messages:
        print(f"--- #{mail.id}  {mail.created_at:%Y-%m-%d %H:%M:%S %Z}", file=out)
        print(f"To: {mail.to_addr}\nSubject: {mail.subject}\n\n{mail.body}", file=out)
    return 0
