"""The password policy, on the password as it is hashed (NFKC-normalised, see
``handlers/accounts/passwords.py``): at least 10 characters (the schema checks that at the
edge; invisible ones — zero-width, control — do not count here), not only spaces, not
one character repeated (``aaaaaaaaaa``), not a run of consecutive characters up or down
(``0123456789``, ``abcdefghij``, ``9876543210``), not the account's email or its local
part, and not one of the ~10,000 common passwords in ``common_passwords.txt`` (compared
lower-cased)."""

from __future__ import annotations

import functools
import itertools
import unicodedata
from importlib import resources

from handlers.accounts.passwords import normalized
from hubbub.contracts.errors import ValidationFailed

MIN_LENGTH = 10
INVISIBLE = frozenset({"Cc", "Cf"})  # control and format characters (zero-width, bidi)


@functools.cache
def common_passwords() -> frozenset[str]:
    text = resources.files(__package__).joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def password_problem(password: str, email: str) -> str | None:
    """Why ``password`` is refused for the account ``email``, or None if it is fine."""
    visible = "".join(c for c in normalized(password) if unicodedata.category(c) not in INVISIBLE)
    if len(visible) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters long"
    lowered = visible.strip().lower()
    if not lowered:
        return "must not be only spaces"
    if lowered in (email.lower(), email.lower().partition("@")[0]):
        return "must not be your email address"
    if len(set(lowered)) == 1:
        return "must not be one character repeated"
    if _run_of_consecutive(lowered):
        return "must not be a run of consecutive characters like abcdefghij or 0123456789"
    if lowered in common_passwords():
        return "is one of the most common passwords; choose another"
    return None


def _run_of_consecutive(text: str) -> bool:
    """Whether each character follows the one before it, all up or all down."""
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(text)}
    return steps in ({1}, {-1})


def check_password(password: str, email: str, *, field: str = "password") -> None:
    """Raise ``ValidationFailed`` (shaped like a schema error on ``field``) if refused."""
    problem = password_problem(password, email)
    if problem is not None:
        raise ValidationFailed(
            f"{field}: {problem}",
            errors=[{"loc": [field], "msg": problem, "type": "password_policy"}],
        )
