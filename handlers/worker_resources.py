"""Per-worker resources that handlers share: made once, typed, injectable.

Like aiohttp's ``AppKey``: a ``ResourceKey`` names a resource, its type and the factory
that builds it from the settings on first use (``ctx.resource(PASSWORD_HASHER)``). A
worker (or a test) may provide its own instance instead — that is the seam through
which tests swap in a counting password hasher or a capturing mailer, without
monkeypatching. ``aclose`` releases every resource that has ``close``/``aclose``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar, cast

from hubbub.config import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


class ResourceKey(Generic[T]):
    __slots__ = ("factory", "name")

    def __init__(self, name: str, factory: Callable[[Settings], T]) -> None:
        self.name = name
        self.factory = factory

    def __repr__(self) -> str:
        return f"ResourceKey({self.name!r})"


class Resources:
    def __init__(self, provided: Mapping[ResourceKey[Any], Any] | None = None) -> None:
        self._values: dict[ResourceKey[Any], Any] = dict(provided or {})
        self._made: list[Any] = []  # what we built, and so must close

    def get(self, key: ResourceKey[T], settings: Settings) -> T:
        if key not in self._values:
            value = key.factory(settings)
            self._values[key] = value
            self._made.append(value)
        return cast(T, self._values[key])

    async def aclose(self) -> None:
        """Close what this object built (what was provided belongs to the provider)."""
        made, self._made = self._made, []
        for value in reversed(made):
            close = getattr(value, "aclose", None) or getattr(value, "close", None)
            if close is None:
                continue
            try:
                result = close()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("closing a resource failed")
        self._values.clear()
