"""`scripts/test` (`bin/hubbub test`) runs every step and fails when one fails: run here
on a copy whose tools are stand-ins that succeed, so only what is under test decides."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PASSING = "#!/usr/bin/env bash\nexit 0\n"


def _tree(tmp_path: Path) -> Path:
    """The script beside stand-ins for the venv's tools and the other scripts."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "test", tmp_path / "scripts" / "test")
    stand_ins = [tmp_path / ".venv" / "bin" / name for name in ("ruff", "mypy", "python")]
    stand_ins += [
        tmp_path / "scripts" / name
        for name in ("ensure-debian-packages", "ensure-frontend-packages", "test-frontend")
    ]
    for path in stand_ins:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(PASSING)
        path.chmod(0o755)
    (tmp_path / "frontend").mkdir()
    (tmp_path / "frontend" / "package.json").write_text("{}\n")
    return tmp_path


def _run(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(tree / "scripts" / "test")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_step_passing_passes_and_the_frontend_step_ran(tmp_path: Path) -> None:
    done = _run(_tree(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "==> frontend" in done.stderr
    assert "all checks passed" in done.stderr


def test_a_frontend_script_that_cannot_run_fails_the_frontend_step(tmp_path: Path) -> None:
    """Say it lost its executable bit: that is a failed step, not a skipped one."""
    tree = _tree(tmp_path)
    (tree / "scripts" / "test-frontend").chmod(0o644)
    done = _run(tree)
    assert done.returncode == 1, done.stderr
    assert "FAILED: frontend" in done.stderr
