"""The architecture's import rules, checked on the source (docs/architecture.md, "Layers")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package → module prefixes it must never import
FORBIDDEN = {
    "hub": ("handlers", "workers", "sqlalchemy", "asyncpg", "alembic", "migrations"),
    "handlers": ("aiohttp", "nats", "hub", "workers"),
    "workers": ("aiohttp", "hub"),
    "hubbub/contracts": (
        "aiohttp",
        "nats",
        "redis",
        "sqlalchemy",
        "asyncpg",
        "hub",
        "handlers",
        "workers",
    ),
}


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_only_what_its_layer_may(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in imports_of(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[package]):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []
