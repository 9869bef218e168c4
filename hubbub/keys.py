"""Redis key names, all under one prefix (``hb:`` plus the namespace)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RedisKeys:
    namespace: str = ""

    @property
    def prefix(self) -> str:
        return f"hb:{self.namespace}:" if self.namespace else "hb:"

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)
