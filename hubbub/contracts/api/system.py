"""System operations: readiness through a real worker round trip."""

from __future__ import annotations

from pydantic import BaseModel

from hubbub.contracts.operations import Access, Catalog, NoParams, Operation


class ComponentStatus(BaseModel):
    ok: bool
    latency_ms: float | None = None
    error: str | None = None


class WorkerReadiness(BaseModel):
    worker: str
    postgres: ComponentStatus
    redis: ComponentStatus


catalog = Catalog()

ready = catalog.add(
    Operation(
        name="system.ready",
        params=NoParams,
        result=WorkerReadiness,
        access=Access.INTERNAL,
        summary="A worker checks PostgreSQL and Redis",
        timeout=3.0,
    )
)
