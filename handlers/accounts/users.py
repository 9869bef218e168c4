"""Reading and writing users: lookups, creation, the public view, the admin check."""

from __future__ import annotations

import uuid

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.accounts.models import User
from handlers.accounts.passwords import PasswordHasher
from handlers.accounts.policy import check_password
from handlers.context import Context
from handlers.db import Query, Row
from hubbub.contracts.api.users import Role, UserPublic
from hubbub.contracts.errors import Conflict, Forbidden, NotFound, Unauthorized


def to_public(user: User) -> UserPublic:
    return UserPublic(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=Role(user.role),
        is_active=user.is_active,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        email_verified=user.email_verified_at is not None,
    )


# ``users.me``'s read: the public view's columns of one user, by id.
PUBLIC_BY_ID = Query(
    select(
        User.id,
        User.email,
        User.display_name,
        User.role,
        User.is_active,
        User.created_at,
        User.last_login_at,
        User.email_verified_at,
    ).where(User.id == bindparam("user_id"))
)


def public_of(row: Row) -> UserPublic:
    """``to_public`` of a ``PUBLIC_BY_ID`` row."""
    return UserPublic(
        id=row["id"],
        email=row["email"],
        display_name=row["display_name"],
        role=Role(row["role"]),
        is_active=row["is_active"],
        created_at=row["created_at"],
        last_login_at=row["last_login_at"],
        email_verified=row["email_verified_at"] is not None,
    )


async def by_email(session: AsyncSession, email: str) -> User | None:
    return (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()


async def by_id(session: AsyncSession, user_id: uuid.UUID | str, *, lock: bool = False) -> User:
    """The user, optionally row-locked (``FOR UPDATE``, re-read); ``NotFound`` if none."""
    user = await session.get(
        User, uuid.UUID(str(user_id)), with_for_update=lock, populate_existing=lock
    )
    if user is None:
        raise NotFound("no such user")
    return user


async def create_user(
    session: AsyncSession,
    hasher: PasswordHasher,
    *,
    email: str,
    password: str,
    display_name: str,
    role: Role = Role.MEMBER,
    verified: bool = False,
) -> User:
    """Check the password policy, hash it, insert the user; ``Conflict`` if the email is
    taken (also when a concurrent registration wins the race)."""
    user = await try_create_user(
        session,
        hasher,
        email=email,
        password=password,
        display_name=display_name,
        role=role,
        verified=verified,
    )
    if user is None:
        raise Conflict("an account with this email already exists", field="email")
    return user


async def try_create_user(
    session: AsyncSession,
    hasher: PasswordHasher,
    *,
    email: str,
    password: str,
    display_name: str,
    role: Role = Role.MEMBER,
    verified: bool = False,
) -> User | None:
    """``create_user``, but None when the email is taken — after the same work (policy
    check, argon2 hash, insert attempt), so either outcome takes as long."""
    check_password(password, email)
    return await try_insert_user(
        session,
        email=email,
        password_hash=await hasher.hash(password),
        display_name=display_name,
        role=role,
        verified=verified,
    )


async def try_insert_user(
    session: AsyncSession,
    *,
    email: str,
    password_hash: str,
    display_name: str,
    role: Role = Role.MEMBER,
    verified: bool = False,
) -> User | None:
    """Insert the user with a password hashed already; None when the email is taken."""
    user_id = (
        await session.execute(
            insert(User)
            .values(
                id=uuid.uuid4(),
                email=email,
                display_name=display_name,
                password_hash=password_hash,
                role=role.value,
                is_active=True,
                email_verified_at=func.now() if verified else None,
            )
            .on_conflict_do_nothing(index_elements=[User.email])
            .returning(User.id)
        )
    ).scalar_one_or_none()
    if user_id is None:
        return None
    return await by_id(session, user_id)


async def current_user(
    ctx: Context, *, lock: bool = False, session: AsyncSession | None = None
) -> User:
    """The signed-in caller's row (read in ``session``, else in the request's);
    ``Unauthorized`` if it is gone or deactivated."""
    try:
        user = await by_id(ctx.session if session is None else session, ctx.user_id, lock=lock)
    except NotFound:
        raise Unauthorized("this account no longer exists") from None
    if not user.is_active:
        raise Unauthorized("this account is deactivated")
    return user


async def current_user_public(ctx: Context) -> UserPublic:
    """``to_public(await current_user(ctx))`` with one read of the columns it needs (on
    the read pool in a read-only operation: no session, no transaction)."""
    row = await ctx.read_one(PUBLIC_BY_ID, uuid.UUID(ctx.user_id))
    if row is None:
        raise Unauthorized("this account no longer exists")
    if not row["is_active"]:
        raise Unauthorized("this account is deactivated")
    return public_of(row)


async def require_admin(ctx: Context) -> User:
    """The caller, if they are an active admin now — the token's role may be stale."""
    user = await current_user(ctx)
    if user.role != Role.ADMIN:
        raise Forbidden("only admins may do this")
    return user
