"""Schemathesis against a running system, reduced: every operation, every check, a few
examples each. ``make fuzz`` runs the full version (200 examples per operation)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.fuzz.system import ROOT

pytestmark = pytest.mark.slow


def test_the_served_document_holds_against_schemathesis() -> None:
    """No 5xx, no response that breaks the document, no valid request refused."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.fuzz", "--max-examples", "10", "--seed", "1"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
