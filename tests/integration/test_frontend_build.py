"""The frontend's build that `hubbub up` runs (``npm ci``, ``npm run build``) dies with
it, as every other child of `up` does: its parent-death signal is SIGTERM. An npm that
records the signal it was given stands in for the real one."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from cli.frontend import ensure_built

FAKE_NPM = """#!{python}
import ctypes, sys
from pathlib import Path

PR_GET_PDEATHSIG = 2
sig = ctypes.c_int()
ctypes.CDLL(None, use_errno=True).prctl(PR_GET_PDEATHSIG, ctypes.byref(sig), 0, 0, 0)
with open("npm-calls", "a") as calls:
    calls.write(f"{{sys.argv[1]}} {{sig.value}}\\n")
if sys.argv[1:3] == ["run", "build"]:
    Path("out").mkdir(exist_ok=True)
    Path("out/index.html").write_text("built")
"""


@pytest.fixture
def fake_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(FAKE_NPM.format(python=sys.executable))
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.skipif(sys.platform != "linux", reason="a parent-death signal is Linux's")
@pytest.mark.usefixtures("fake_npm")
def test_npm_ci_and_the_build_die_with_up(tmp_path: Path) -> None:
    root = tmp_path / "frontend"
    root.mkdir()
    (root / "package.json").write_text("{}")
    (root / "package-lock.json").write_text("{}")  # no node_modules yet: npm ci runs
    assert ensure_built(root) == root / "out"
    calls = (root / "npm-calls").read_text().splitlines()
    assert calls == [f"ci {int(signal.SIGTERM)}", f"run {int(signal.SIGTERM)}"]
