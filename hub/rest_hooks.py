"""Per-operation hooks around a REST call: the one place where HTTP-only concerns
(cookies, headers) meet an operation, so the operation itself stays the same over REST
and over WebSocket RPC, and the worker never sees an HTTP detail — only params.

* A **before** hook runs after the request body is parsed and before the params are
  validated: it may add params (from a cookie, a header) or refuse the request by
  raising a ``HubbubError``.
* An **after** hook runs on the successful response: it may reshape the body, set or
  clear cookies, add headers. It gets the worker's validated result too.
* A **failed** hook runs on the problem-details response of an operation that failed
  (after its before hooks passed): e.g. a refused refresh clears the dead cookie.

Hooks are registered by operation name at app creation (``create_app``), e.g. the
refresh-token cookie in ``hub/session_cookie.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from hubbub.contracts.errors import HubbubError

BeforeHook = Callable[[web.Request, dict[str, Any]], None]
AfterHook = Callable[[web.Request, Any, web.Response], None]
FailedHook = Callable[[web.Request, HubbubError, web.Response], None]


@dataclass
class RestHooks:
    before: dict[str, list[BeforeHook]] = field(default_factory=dict)
    after: dict[str, list[AfterHook]] = field(default_factory=dict)
    failed: dict[str, list[FailedHook]] = field(default_factory=dict)

    def add_before(self, operation: str, hook: BeforeHook) -> None:
        self.before.setdefault(operation, []).append(hook)

    def add_after(self, operation: str, hook: AfterHook) -> None:
        self.after.setdefault(operation, []).append(hook)

    def add_failed(self, operation: str, hook: FailedHook) -> None:
        self.failed.setdefault(operation, []).append(hook)

    def run_before(self, operation: str, request: web.Request, params: dict[str, Any]) -> None:
        for hook in self.before.get(operation, ()):
            hook(request, params)

    def run_after(
        self, operation: str, request: web.Request, result: Any, response: web.Response
    ) -> None:
        for hook in self.after.get(operation, ()):
            hook(request, result, response)

    def run_failed(
        self, operation: str, request: web.Request, error: HubbubError, response: web.Response
    ) -> None:
        for hook in self.failed.get(operation, ()):
            hook(request, error, response)
