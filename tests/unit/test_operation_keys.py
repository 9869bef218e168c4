"""What names an actor: a params field whose value may end up in logs ("mailbox of
('workspace_id', '…') is full"), so never a secret such as an invitation or reset token."""

from __future__ import annotations

from hubbub.contracts.api import default_catalog
from hubbub.contracts.api.invitations import accept, decline


def test_no_operation_is_keyed_by_a_token_or_secret() -> None:
    keyed = {op.name: op.key for op in default_catalog() if op.key is not None}
    assert keyed, "some operations are keyed (per-workspace ordering)"
    secretive = ("token", "password", "secret", "key")
    assert {
        name: key for name, key in keyed.items() if any(word in key for word in secretive)
    } == {}


def test_answering_an_invitation_is_not_keyed_by_its_token() -> None:
    """Their row lock orders answers; an actor per token would put it in log lines."""
    assert (accept.key, decline.key) == (None, None)
