"""``hubbub openapi`` and ``hubbub asyncapi`` build documents, nothing more: run where no
state folder is (the frontend's ``npm run sync:api`` runs them in ``frontend/``), they
leave none behind — no ``.hubbub/secret_key`` made for a secret they never use — and
need no secret, in production either."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.support.processes import ROOT


@pytest.mark.parametrize("command", ["openapi", "asyncapi"])
@pytest.mark.parametrize("env", ["development", "production"])
def test_a_document_is_written_and_no_state_folder_is_made(
    tmp_path: Path, command: str, env: str
) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HUBBUB_")}
    environ |= {"PYTHONPATH": str(ROOT), "HUBBUB_ENV": env}
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", command, "--output", "document.json"],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert orjson.loads((tmp_path / "document.json").read_bytes())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["document.json"]
