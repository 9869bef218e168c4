"""The password policy: at least 10 characters (the schema checks that at the edge), not
the account's email or its local part, and not one of the ~10,000 common passwords in
``common_passwords.txt`` (compared lower-cased)."""

from __future__ import annotations

import functools
from importlib import resources

from hubbub.contracts.errors import ValidationFailed

MIN_LENGTH = 10


@functools.cache
def common_passwords() -> frozenset[str]:
    text = resources.files(__package__).joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def password_problem(password: str, email: str) -> str | None:
    """Why ``password`` is refused for the account ``email``, or None if it is fine."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters long"
    lowered = password.strip().lower()
    if lowered in (email.lower(), email.lower().partition("@")[0]):
        return "must not be your email address"
    if lowered in common_passwords():
        return "is one of the most common passwords; choose another"
    return None


def check_password(password: str, email: str, *, field: str = "password") -> None:
    """Raise ``ValidationFailed`` (shaped like a schema error on ``field``) if refused."""
    problem = password_problem(password, email)
    if problem is not None:
        raise ValidationFailed(
            f"{field}: {problem}",
            errors=[{"loc": [field], "msg": problem, "type": "password_policy"}],
        )
