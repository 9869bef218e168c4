"""Operations: the one description of every API call, shared by the hub and the workers.

An ``Operation`` names a method (``resources.create``), its params and result schemas,
who may call it, and — when it is also a REST route — its HTTP method and path. The hub
builds its REST routes, its WS ``rpc`` dispatch and its OpenAPI document from the
catalog; a worker registers one handler per operation. Adding an operation is: its
schemas, one ``Operation`` in the catalog, one handler function.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter

from hubbub.contracts.errors import ErrorCode


class Access(StrEnum):
    PUBLIC = "public"  # anyone, signed in or not
    USER = "user"  # a signed-in user (finer checks happen in the handler)
    ADMIN = "admin"  # a user with the admin role (the handler re-checks in the DB)
    SERVICE = "service"  # a backend service with an API key
    INTERNAL = "internal"  # hub-to-worker only; never reachable from a client


@dataclass(frozen=True, slots=True)
class Http:
    method: str
    path: str  # relative to /api/v1, with {param} placeholders named like params fields
    status: int = 200
    etag: str | None = None  # result field whose value is the entity version (ETag)
    # A result field that is the caller's own, not the entity's (their role in it): in the
    # ETag too (``"3-admin"``), so a tag held from before it changed is not current.
    etag_caller: str | None = None
    if_match: str | None = None  # params field that receives If-Match's version

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(re.findall(r"{(\w+)}", self.path))

    @property
    def has_body(self) -> bool:
        return self.method in {"POST", "PUT", "PATCH"}


class NoParams(BaseModel):
    """Params of an operation that takes none: any field is refused, as everywhere."""

    model_config = ConfigDict(extra="forbid")


class Empty(BaseModel):
    """Result of an operation that returns nothing."""


@dataclass(frozen=True)
class Operation:
    name: str
    params: type[BaseModel]
    result: Any  # a pydantic model or any type TypeAdapter accepts
    access: Access
    http: Http | None = None
    mutating: bool = False  # takes an idempotency key; its replies are stored per key
    key: str | None = None  # params field that names the actor (per-key ordering)
    summary: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    # Error codes this operation's handler may answer with, beyond those every operation
    # may (bad_request, validation_failed, internal, unavailable, timeout, bad_gateway,
    # too_large) and those its access and route imply (unauthorized, precondition_failed).
    # The OpenAPI document lists them.
    errors: tuple[ErrorCode, ...] = ()
    timeout: float = 10.0  # seconds the hub waits for the worker's reply
    # Reads run without a transaction (no BEGIN/COMMIT round trips; each statement sees
    # what READ COMMITTED would show it anyway). None: a GET route is read-only, anything
    # else is not. A read-only handler must neither write nor take row locks.
    read_only: bool | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z_]+\.[a-z_]+", self.name):
            raise ValueError(f"operation name {self.name!r} must be <domain>.<op>")
        if self.key is not None and self.key not in self.params.model_fields:
            raise ValueError(f"{self.name}: key {self.key!r} is not a params field")
        if self.http is not None:
            for p in self.http.path_params:
                if p not in self.params.model_fields:
                    raise ValueError(f"{self.name}: path parameter {p!r} is not a params field")
        if self.read_only and self.mutating:
            raise ValueError(f"{self.name}: an operation cannot both mutate and read only")

    @property
    def reads_only(self) -> bool:
        if self.read_only is not None:
            return self.read_only
        return self.http is not None and self.http.method == "GET" and not self.mutating

    @cached_property
    def result_adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(self.result)

    @property
    def domain(self) -> str:
        return self.name.split(".", 1)[0]


@dataclass
class Catalog:
    """A set of operations by name. The hub and the workers are built from one."""

    operations: dict[str, Operation] = field(default_factory=dict)

    def add(self, op: Operation) -> Operation:
        if op.name in self.operations:
            raise ValueError(f"operation {op.name!r} defined twice")
        self.operations[op.name] = op
        return op

    def extend(self, other: Catalog) -> Catalog:
        for op in other:
            self.add(op)
        return self

    def get(self, name: str) -> Operation | None:
        return self.operations.get(name)

    def __getitem__(self, name: str) -> Operation:
        return self.operations[name]

    def __iter__(self) -> Iterator[Operation]:
        return iter(self.operations.values())

    def __len__(self) -> int:
        return len(self.operations)

    def __contains__(self, name: object) -> bool:
        return name in self.operations
