"""The layers keep to their lanes: the hub never loads the database layer."""

from __future__ import annotations

import subprocess
import sys


class TestHubImports:
    def test_the_hub_imports_no_handlers_and_no_sqlalchemy(self) -> None:
        probe = (
            "import sys, hub.app, hub.main;"
            "bad = sorted(m for m in sys.modules"
            " if m.split('.')[0] in ('handlers', 'sqlalchemy', 'asyncpg', 'workers'));"
            "print(','.join(bad))"
        )
        done = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        )
        assert done.stdout.strip() == ""

    def test_the_token_module_needs_no_database(self) -> None:
        probe = (
            "import sys, hubbub.tokens;"
            "print(any(m.split('.')[0] in ('sqlalchemy', 'handlers') for m in sys.modules))"
        )
        done = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        )
        assert done.stdout.strip() == "False"
