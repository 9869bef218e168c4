"""`hubbub up` prints its data folders as the README shows them: `.hubbub/postgres`
for the default state folder, an absolute path for one elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.supervisor import shown


def test_a_folder_inside_the_working_directory_is_shown_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert shown((tmp_path / ".hubbub" / "postgres").resolve()) == ".hubbub/postgres"


def test_a_folder_elsewhere_is_shown_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "clone").mkdir()
    monkeypatch.chdir(tmp_path / "clone")
    state = (tmp_path / "state" / "nats").resolve()
    assert shown(state) == str(state)
