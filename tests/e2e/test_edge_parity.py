"""One edge path: every catalog operation, called over REST and over WebSocket RPC with
the same bad input, fails with the same error code (``hub/calls.py``).

Against a real hub with a real worker. The bad inputs: params that do not validate, a
malformed idempotency key, no or an insufficient sign-in, an internal operation.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from pydantic import BaseModel, ValidationError

from hub.calls import reachable
from hubbub.contracts.operations import Access, Operation
from tests.e2e.test_realtime import raw_socket, receive_json
from tests.support import ops
from tests.support.tokens import TestTokens

CATALOG = ops.catalog_with_tests()
ROUTED = [op for op in CATALOG if op.http is not None and reachable(op)]
BAD_KEYS = ["has space", "x" * 201, "", "naïve"]


def path_values(op: Operation) -> dict[str, str]:
    """A well-formed value for each path parameter (ids are UUIDs)."""
    assert op.http is not None
    return {name: str(uuid.uuid4()) for name in op.http.path_params}


def rejects(model: type[BaseModel], params: dict[str, Any]) -> bool:
    try:
        model.model_validate(params)
    except ValidationError:
        return True
    return False


# Values that break most field types, in the form a query string can carry too.
CANDIDATES: list[Any] = ["not-a-uuid-or-number", "-1", "x" * 5000, "", [[["nested"]]]]


def bad_params(op: Operation) -> dict[str, Any] | None:
    """Params that ``op``'s schema refuses: well-formed path ids and one field broken
    (a path id when that is what breaks it); None when nothing can be refused."""
    assert op.http is not None
    base = path_values(op)
    fields = [op.params.model_fields[n].alias or n for n in op.params.model_fields]
    for name in list(op.http.path_params) + [f for f in fields if f not in base]:
        in_path = name in op.http.path_params
        for value in CANDIDATES:
            if in_path and (not isinstance(value, str) or value == ""):
                continue  # a path segment is a non-empty string
            if not in_path and not op.http.has_body and not isinstance(value, str):
                continue  # so is a query parameter
            candidate = {**base, name: value}
            if rejects(op.params, candidate):
                return candidate
    return None


@dataclass
class Outcome:
    status: int
    code: str | None


class Edge:
    """The same call over REST and over RPC, each answered with its error code."""

    def __init__(
        self, server: TestServer, session: aiohttp.ClientSession, ws: Any, tokens: TestTokens
    ) -> None:
        self.base = f"http://127.0.0.1:{server.port}/api/v1"
        self.session = session
        self.ws = ws
        self.tokens = tokens
        self.ids = itertools.count(100)

    async def rest(
        self,
        op: Operation,
        params: dict[str, Any],
        *,
        token: str | None,
        idempotency_key: str | None = None,
    ) -> Outcome:
        assert op.http is not None
        rest = dict(params)
        path = op.http.path
        for name in op.http.path_params:
            path = path.replace("{" + name + "}", quote(str(rest.pop(name)), safe=""))
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        kwargs: dict[str, Any] = {"headers": headers}
        if op.http.has_body:
            kwargs["data"] = orjson.dumps(rest)
            headers["Content-Type"] = "application/json"
        else:
            kwargs["params"] = [(k, str(v)) for k, v in rest.items()]
        async with self.session.request(op.http.method, self.base + path, **kwargs) as response:
            body = await response.read()
            code = orjson.loads(body).get("code") if response.status >= 400 else None
            return Outcome(response.status, code)

    async def rpc(
        self, method: str, params: dict[str, Any], *, idempotency_key: str | None = None
    ) -> Outcome:
        command_id = next(self.ids)
        command: dict[str, Any] = {"id": command_id, "op": "rpc", "method": method}
        command["params"] = params
        if idempotency_key is not None:
            command["idempotency_key"] = idempotency_key
        await self.ws.send_str(orjson.dumps(command).decode())
        while True:
            frame = await receive_json(self.ws, timeout=15)
            if frame.get("id") == command_id:
                break
        error = frame.get("error")
        return Outcome(error["status"], error["code"]) if error else Outcome(200, None)


async def connected(session: aiohttp.ClientSession, url: str, token: str) -> Any:
    ws = await raw_socket(url, session)
    await ws.send_str(orjson.dumps({"id": 1, "op": "connect", "token": token}).decode())
    assert "result" in await receive_json(ws)
    return ws


@pytest.fixture
async def admin_edge(
    hub_server: TestServer, ws_url: str, tokens: TestTokens
) -> AsyncIterator[Edge]:
    """REST and a socket, both as a signed-in admin (access passes everywhere)."""
    async with aiohttp.ClientSession() as session:
        ws = await connected(session, ws_url, tokens.issue("edge-admin", role="admin"))
        yield Edge(hub_server, session, ws, tokens)


@pytest.fixture
async def member_edge(
    hub_server: TestServer, ws_url: str, tokens: TestTokens
) -> AsyncIterator[Edge]:
    async with aiohttp.ClientSession() as session:
        ws = await connected(session, ws_url, tokens.issue("edge-member"))
        yield Edge(hub_server, session, ws, tokens)


class TestSameErrorBothWays:
    async def test_params_that_do_not_validate_are_validation_failed_both_ways(
        self, admin_edge: Edge, tokens: TestTokens
    ) -> None:
        token = tokens.issue("edge-admin", role="admin")
        seen: dict[str, tuple[str | None, str | None]] = {}
        nothing_to_refuse = []
        for op in ROUTED:
            params = bad_params(op)
            if params is None:
                nothing_to_refuse.append(op.name)
                continue
            rest = await admin_edge.rest(op, params, token=token)
            rpc = await admin_edge.rpc(op.name, params)
            seen[op.name] = (rest.code, rpc.code)
        assert {name: codes for name, codes in seen.items() if codes[0] != codes[1]} == {}
        assert {name for name, codes in seen.items() if codes[0] != "validation_failed"} == set()
        # Only operations whose params have no field at all take anything.
        assert sorted(nothing_to_refuse) == sorted(
            op.name for op in ROUTED if not op.params.model_fields
        )
        assert len(seen) >= 30

    async def test_a_malformed_idempotency_key_is_bad_request_both_ways(
        self, admin_edge: Edge, tokens: TestTokens
    ) -> None:
        """The REST rule (1-200 visible ASCII characters) for both, on every operation
        — checked before the params, so any params do."""
        token = tokens.issue("edge-admin", role="admin")
        differing = {}
        for op in ROUTED:
            for key in BAD_KEYS:
                params = path_values(op)
                rest = await admin_edge.rest(op, params, token=token, idempotency_key=key)
                rpc = await admin_edge.rpc(op.name, params, idempotency_key=key)
                if (rest.code, rpc.code) != ("bad_request", "bad_request"):
                    differing[(op.name, key[:12])] = (rest.code, rpc.code)
        assert differing == {}

    async def test_a_well_formed_key_passes_both_ways(
        self, admin_edge: Edge, tokens: TestTokens
    ) -> None:
        token = tokens.issue("edge-admin", role="admin")
        key = "~!visible-ascii:" + "k" * 150
        rest = await admin_edge.rest(ops.echo, {"seq": 3}, token=token, idempotency_key=key)
        rpc = await admin_edge.rpc("test.echo", {"seq": 3}, idempotency_key=key)
        assert (rest, rpc) == (Outcome(200, None), Outcome(200, None))

    async def test_without_a_sign_in_every_user_operation_is_unauthorized(
        self, admin_edge: Edge, ws_url: str
    ) -> None:
        """REST without a token, and a socket whose connect has a bad one: 401 both."""
        refused = {}
        for op in ROUTED:
            if op.access is Access.PUBLIC:
                continue
            rest = await admin_edge.rest(op, path_values(op), token=None)
            refused[op.name] = rest.code
        assert set(refused.values()) == {"unauthorized"}
        ws = await raw_socket(ws_url, admin_edge.session)
        await ws.send_str(orjson.dumps({"id": 1, "op": "connect", "token": "nope"}).decode())
        reply = await receive_json(ws)
        assert (reply["id"], reply["error"]["code"]) == (1, "unauthorized")

    async def test_an_admin_operation_is_forbidden_to_a_member_both_ways(
        self, member_edge: Edge, tokens: TestTokens
    ) -> None:
        token = tokens.issue("edge-member")
        admin_ops = [op for op in ROUTED if op.access is Access.ADMIN]
        assert admin_ops
        for op in admin_ops:
            params = path_values(op)
            rest = await member_edge.rest(op, params, token=token)
            rpc = await member_edge.rpc(op.name, params)
            assert (op.name, rest.code, rpc.code) == (op.name, "forbidden", "forbidden")

    async def test_an_internal_operation_is_not_found_both_ways(
        self, admin_edge: Edge, tokens: TestTokens
    ) -> None:
        """``test.internal`` has an HTTP route in the catalog, yet no route is served;
        the internal operations without one are unknown methods over RPC too."""
        token = tokens.issue("edge-admin", role="admin")
        rest = await admin_edge.rest(ops.internal, {"seq": 1}, token=token)
        rpc = await admin_edge.rpc("test.internal", {"seq": 1})
        assert (rest.code, rpc.code) == ("not_found", "not_found")
        for op in CATALOG:
            if op.access in (Access.INTERNAL, Access.SERVICE):
                assert (await admin_edge.rpc(op.name, {})).code == "not_found", op.name
