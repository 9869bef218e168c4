"""Handlers by operation name: ``@registry.handler(op)`` on an async function."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from handlers.context import Context
from hubbub.contracts.operations import Catalog, Operation

Handler = Callable[[Context, Any], Awaitable[Any]]
H = TypeVar("H", bound=Handler)


@dataclass
class Registry:
    handlers: dict[str, tuple[Operation, Handler]] = field(default_factory=dict)

    def handler(self, op: Operation) -> Callable[[H], H]:
        def register(fn: H) -> H:
            if op.name in self.handlers:
                raise ValueError(f"a handler for {op.name!r} is already registered")
            self.handlers[op.name] = (op, fn)
            return fn

        return register

    def get(self, name: str) -> tuple[Operation, Handler] | None:
        return self.handlers.get(name)

    def extend(self, other: Registry) -> Registry:
        for op, fn in other.handlers.values():
            self.handler(op)(fn)
        return self

    def check_covers(self, catalog: Catalog) -> None:
        """Raise if an operation in the catalog has no handler (a test runs this on the
        default registry, so a missing handler fails the suite rather than a call)."""
        missing = sorted(op.name for op in catalog if op.name not in self.handlers)
        if missing:
            raise RuntimeError(f"operations without a handler: {', '.join(missing)}")

    def __iter__(self) -> Iterator[tuple[Operation, Handler]]:
        return iter(self.handlers.values())
