"""The architecture's import rules, checked on the source (docs/architecture.md, "Layers").

Every import counts, wherever it is written: at the top of a module, inside a function
(where a lazy import hides it from a reader), under ``if TYPE_CHECKING:``, or as
``importlib.import_module("…")`` with a literal name. The source is parsed, not grepped.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

UPPER = ("hub", "handlers", "workers", "migrations", "cli")

# the package (a folder under the root) → module prefixes it must never import
FORBIDDEN = {
    # The kernel is what every process shares; it knows no layer above it.
    "hubbub": UPPER,
    "hubbub/contracts": (*UPPER, "aiohttp", "nats", "redis", "sqlalchemy", "asyncpg"),
    "hub": ("handlers", "workers", "migrations", "cli", "sqlalchemy", "asyncpg", "alembic"),
    "handlers": ("hub", "workers", "migrations", "cli", "aiohttp", "nats"),
    "workers": ("hub", "migrations", "cli", "aiohttp"),
    # The schema's history; alembic's env.py reads the models' metadata from handlers.
    "migrations": ("hub", "workers", "cli", "aiohttp", "nats"),
}

# What the contracts may import, and nothing else: they are the shapes every process and
# the generated documents share, so they stay plain data (docs/architecture.md, "Layers").
CONTRACTS_MAY_IMPORT = (
    "hubbub.contracts",
    "pydantic",
    "typing_extensions",  # pydantic's own dependency: TypeAliasType for a recursive type
    "email_validator",  # pydantic's email checks: its list of special-use domains
    "orjson",  # a resource's data measured as the JSON it is stored as
)

# The operator layer (the `hubbub` command) is imported by nothing but itself and the
# programs that drive whole systems: the tests, the benchmarks, the chaos runs.
MAY_IMPORT_CLI = {"cli", "tests", "bench", "chaos"}


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every module the file at ``path`` imports, with its line."""
    package = path.relative_to(ROOT).parts[:-1]  # hubbub/contracts/x.py, …/__init__.py
    return imports_in(path.read_text(), package)


def imports_in(source: str, package: tuple[str, ...]) -> list[tuple[int, str]]:
    """Every module ``source`` imports, with its line; relative imports resolved against
    ``package`` (the dotted parts of the package the module is in)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # `from cli import runtime` imports cli.runtime
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and _called_name(node.func) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _matches(name: str, prefixes: tuple[str, ...] | set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    """``path:line imports name`` for each import statement that breaks the rule, once."""
    found: dict[tuple[Path, int], str] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, name in imports_of(path):
            if _matches(name, forbidden):
                found.setdefault((path, line), name)
    return [
        f"{path.relative_to(ROOT)}:{line} imports {name}" for (path, line), name in found.items()
    ]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_only_what_its_layer_may(package: str) -> None:
    assert offenders(package, FORBIDDEN[package]) == []


def test_the_contracts_import_only_the_standard_library_and_their_allowed_packages() -> None:
    found: dict[tuple[Path, int], str] = {}
    for path in sorted((ROOT / "hubbub" / "contracts").rglob("*.py")):
        for line, name in imports_of(path):
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and not _matches(name, CONTRACTS_MAY_IMPORT):
                found.setdefault((path, line), name)
    assert [
        f"{path.relative_to(ROOT)}:{line} imports {name}" for (path, line), name in found.items()
    ] == []


def test_nothing_but_the_tools_that_drive_a_system_imports_the_operator_layer() -> None:
    packages = sorted(
        p.name
        for p in ROOT.iterdir()
        if p.is_dir() and (p / "__init__.py").exists() and p.name not in MAY_IMPORT_CLI
    )
    assert {"hubbub", "hub", "handlers", "workers", "migrations"} <= set(packages)
    assert [o for package in packages for o in offenders(package, ("cli",))] == []


def test_imports_hidden_in_functions_are_seen() -> None:
    """The checker's own check: lazy, relative and importlib imports all count."""
    source = (
        "import importlib\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    import hub.app\n"
        "def f():\n"
        "    from cli.runtime import load_settings\n"
        "    return importlib.import_module('workers.app')\n"
        "from .contracts import errors\n"
        "from . import bus\n"
    )
    names = {name for _, name in imports_in(source, ("hubbub",))}
    assert {"hub.app", "cli.runtime", "workers.app"} <= names
    assert {"hubbub.contracts.errors", "hubbub.bus"} <= names
    assert not _matches("hubbub.contracts", ("hub",))  # a prefix is a whole name
