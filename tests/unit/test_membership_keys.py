"""Which workspace and membership mutations queue behind each other in a worker (the
actor key, docs/domain.md "Actors"): those whose params name the workspace are keyed by
it; answering an invitation names none (a token, or the invitation's id), nor does
creating a workspace, so those run unkeyed and the workspace's row lock orders them."""

from __future__ import annotations

from hubbub.contracts.api import default_catalog

UNKEYED = {
    "workspaces.create",
    "invitations.accept",
    "invitations.decline",
    "invitations.accept_mine",
    "invitations.decline_mine",
}


def test_what_names_a_workspace_is_keyed_by_it_and_answering_an_invitation_is_not() -> None:
    keys = {
        op.name: op.key
        for op in default_catalog()
        if op.mutating and op.name.split(".")[0] in ("workspaces", "members", "invitations")
    }
    assert {name for name, key in keys.items() if key is None} == UNKEYED
    assert {key for name, key in keys.items() if name not in UNKEYED} == {"workspace_id"}
