"""Which resource operations queue behind each other in a worker (the actor key), and
why: only what correctness needs (bench/README.md, "A busy workspace")."""

from __future__ import annotations

from hubbub.contracts.api import default_catalog
from hubbub.contracts.api import resources as api


def test_creates_have_no_key_so_a_busy_workspace_is_not_one_queue() -> None:
    """Each create is whole in its own transaction; none waits for another."""
    assert api.create.key is None


def test_changes_of_a_resource_are_ordered_per_resource() -> None:
    assert (api.update.key, api.delete.key, api.restore.key) == ("resource_id",) * 3


def test_no_resource_operation_is_keyed_by_its_workspace() -> None:
    keyed = {op.name: op.key for op in default_catalog() if op.name.startswith("resources.")}
    assert "workspace_id" not in keyed.values()
