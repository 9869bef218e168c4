"""The event catalog is the one list of domain event types: the docs' table is its own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from hubbub.contracts.channels import ChannelKind
from hubbub.contracts.event_types import EVENT_TYPES, domain_table, on_channel
from hubbub.contracts.events import EventType

ROOT = Path(__file__).resolve().parents[2]


def test_docs_domain_md_lists_exactly_the_catalog() -> None:
    text = (ROOT / "docs" / "domain.md").read_text()
    section = text.split("## Events", 1)[1].split("\n## ", 1)[0]
    table = "\n".join(line for line in section.splitlines() if line.startswith("|")) + "\n"
    assert table == domain_table(), "docs/domain.md's event table: paste domain_table()"


def test_every_name_is_its_key_and_every_kind_has_its_events() -> None:
    assert all(name == event.name for name, event in EVENT_TYPES.items())
    assert {e.name for e in on_channel(ChannelKind.USER)} == {
        "workspace.deleted",
        "member.added",
        "member.updated",
        "member.removed",
        "user.updated",
    }
    assert on_channel(ChannelKind.TICKER) == []  # backend services publish free-form data


def test_an_event_type_is_named_subject_dot_verb_and_goes_somewhere() -> None:
    with pytest.raises(ValueError, match=r"<subject>\.<verb>"):
        EventType("Resource-Created", BaseModel, (ChannelKind.WORKSPACE,), "")
    with pytest.raises(ValueError, match="no channel kind"):
        EventType("resource.created", BaseModel, (), "")


def test_no_handler_names_an_event_type_with_a_bare_string() -> None:
    literal = re.compile(r"""["'](workspace|member|invitation|resource|user)\.[a-z_]+["']""")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "handlers").rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if literal.search(line) and not line.lstrip().startswith("#")
    ]
    assert offenders == []
