"""Users: the signed-in user's own account, and the admins' view of every account."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StrictBool,
    StringConstraints,
)
from pydantic.json_schema import SkipJsonSchema

from hubbub.contracts.api.common import Name, NotNull, PatchParams
from hubbub.contracts.errors import ErrorCode
from hubbub.contracts.operations import Access, Catalog, Empty, Http, NoParams, Operation


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


def normalize_email(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)


# email-validator refuses special-use domains (.test, .local, .arpa, ...); say so in the
# JSON schema too (JSON schema regexes have no case-insensitive flag).
_SPECIAL_USE = "@(.*\\.)?(" + "|".join(_any_case(d) for d in SPECIAL_USE_DOMAIN_NAMES) + ")$"

# Emails are compared, stored and looked up lower-cased and stripped.
Email = Annotated[
    EmailStr,
    BeforeValidator(normalize_email),
    AfterValidator(str.lower),
    Field(json_schema_extra={"not": {"pattern": _SPECIAL_USE}}),
]
# One line, 1-100 characters, stripped (hubbub.contracts.api.common.Name).
DisplayName = Name
# The shape of a new password; the rest of the policy (not the email, not a common
# password) is checked by the handler, which knows the email and the common list.
NewPassword = Annotated[str, StringConstraints(min_length=10, max_length=256)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserPublic(BaseModel):
    id: uuid.UUID
    email: str
    display_name: str
    role: Role
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None = None
    email_verified: bool = Field(
        default=False,
        description="The owner proved the address (a mailed link); needed to answer invitations",
    )


class UpdateMeParams(PatchParams):
    patchable = ("display_name",)

    display_name: Annotated[DisplayName | SkipJsonSchema[None], NotNull] = None


class ChangePasswordParams(_Params):
    current_password: Password
    new_password: NewPassword


class ListUsersParams(_Params):
    q: (
        Annotated[
            str, StringConstraints(strip_whitespace=True, max_length=100, pattern=r"^[^\x00]*$")
        ]
        | None
    ) = Field(default=None, description="Part of an email or display name")
    role: Role | None = None
    is_active: bool | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: Annotated[str, StringConstraints(max_length=400)] | None = Field(
        default=None, description="next_cursor of the previous page"
    )


class UserPage(BaseModel):
    items: list[UserPublic]
    next_cursor: str | None = None


class UserIdParams(_Params):
    user_id: uuid.UUID


class UpdateUserParams(PatchParams):
    """Omitted means unchanged; ``null`` is refused (the schema says so too)."""

    patchable = ("role", "is_active")

    user_id: uuid.UUID
    role: Annotated[Role | SkipJsonSchema[None], NotNull] = None
    is_active: Annotated[StrictBool | SkipJsonSchema[None], NotNull] = None


catalog = Catalog()

me = catalog.add(
    Operation(
        name="users.me",
        params=NoParams,
        result=UserPublic,
        access=Access.USER,
        http=Http("GET", "/users/me"),
        summary="The signed-in user",
        tags=("users",),
    )
)
update_me = catalog.add(
    Operation(
        name="users.update_me",
        params=UpdateMeParams,
        result=UserPublic,
        access=Access.USER,
        http=Http("PATCH", "/users/me"),
        mutating=True,
        summary="Change the signed-in user's profile",
        tags=("users",),
    )
)
change_password = catalog.add(
    Operation(
        name="users.change_password",
        params=ChangePasswordParams,
        result=Empty,
        access=Access.USER,
        http=Http("POST", "/users/me/password", status=204),
        summary="Change the password; signs out every other session",
        tags=("users",),
        errors=(ErrorCode.FORBIDDEN, ErrorCode.RATE_LIMITED),
    )
)
list_users = catalog.add(
    Operation(
        name="users.list",
        params=ListUsersParams,
        result=UserPage,
        access=Access.ADMIN,
        http=Http("GET", "/users"),
        summary="List and search users, ordered by email, a page at a time",
        tags=("users", "admin"),
    )
)
get_user = catalog.add(
    Operation(
        name="users.get",
        params=UserIdParams,
        result=UserPublic,
        access=Access.ADMIN,
        http=Http("GET", "/users/{user_id}"),
        summary="One user",
        tags=("users", "admin"),
        errors=(ErrorCode.NOT_FOUND,),
    )
)
update_user = catalog.add(
    Operation(
        name="users.update",
        params=UpdateUserParams,
        result=UserPublic,
        access=Access.ADMIN,
        http=Http("PATCH", "/users/{user_id}"),
        mutating=True,
        key="user_id",
        summary="Change a user's role, or deactivate / reactivate them",
        tags=("users", "admin"),
        errors=(ErrorCode.NOT_FOUND, ErrorCode.CONFLICT),
    )
)
