"""The HTTP middlewares and the WebSocket route: an open socket whose handler answers its
own failures (``answers_own_failures``, as the hub's endpoint does) keeps no coroutine of
the middlewares, any other keeps one light one (``_socket_request``); the socket's
context still has its request id and the hub's metrics; a refused or failing upgrade is
still answered with problem details and the usual headers; REST requests keep their
deadline."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from hub import metrics
from hub.deadlines import request_deadline, time_left
from hub.middleware import (
    REQUEST_ID_HEADER,
    SECURITY_HEADERS,
    answers_own_failures,
    cors,
    request_context,
    socket_failure,
    socket_refusal,
)
from hub.problems import problem_response
from hub.state import SETTINGS
from hubbub.config import Environment, Settings
from hubbub.contracts.errors import Forbidden
from hubbub.logs import request_id_var

ORIGIN = "https://app.example"
MIDDLEWARE_COROUTINES = {
    *("request_context", "cors", "request_deadline"),
    *("_http_request", "_preflight", "_within_deadline", "_socket_request"),
}


def _app(
    tmp_path: Any,
    ws: Any,
    rest_state: dict[str, Any] | None = None,
    request_timeout_s: float = 10.0,
) -> web.Application:
    state: dict[str, Any] = {} if rest_state is None else rest_state
    app = web.Application(middlewares=[request_context, cors, request_deadline])
    app[SETTINGS] = Settings(
        env=Environment.TEST,
        state_dir=tmp_path,
        secret_key="s" * 40,
        cors_origins=[ORIGIN],
        request_timeout_s=request_timeout_s,
        _env_file=None,
    )
    app.router.add_get("/ws", ws)

    async def rest(request: web.Request) -> web.Response:
        state["task"] = asyncio.current_task()
        state["entered"].set()
        await state["release"].wait()
        return web.json_response({"time_left": time_left()})

    state["entered"], state["release"] = asyncio.Event(), asyncio.Event()
    app.router.add_get("/api/v1/x", rest)
    return app


def _chain(task: asyncio.Task[Any]) -> list[str]:
    """The names of the coroutines a suspended task waits in, outermost first."""
    names = []
    coro: Any = task.get_coro()
    while coro is not None and hasattr(coro, "cr_code"):
        names.append(coro.cr_code.co_name)
        coro = coro.cr_await
    return names


@pytest.mark.parametrize("marked", [True, False])
async def test_an_open_socket_keeps_one_light_middleware_coroutine(
    aiohttp_client: Any, tmp_path: Any, marked: bool
) -> None:
    seen: dict[str, Any] = {}
    open_ = asyncio.Event()

    async def ws(request: web.Request) -> web.StreamResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        seen["task"] = asyncio.current_task()
        open_.set()
        seen["request_id"] = request_id_var.get()
        seen["metrics"] = metrics.current.get()
        seen["time_left"] = time_left()
        async for _ in socket:
            pass
        return socket

    app = _app(tmp_path, answers_own_failures(ws) if marked else ws)
    client = await aiohttp_client(app)
    async with client.ws_connect("/ws", headers={REQUEST_ID_HEADER: "socket-01"}) as socket:
        await open_.wait()
        await socket.send_str("ping")  # read by the handler, which then waits again
        await socket.ping()
        seen["chain"] = _chain(seen["task"])
        await socket.close()
        assert (await socket.receive()).type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
    ours = [name for name in seen["chain"] if name in MIDDLEWARE_COROUTINES]
    assert ours == ([] if marked else ["_socket_request"])
    assert "ws" in seen["chain"]
    assert seen["request_id"] == "socket-01"
    assert seen["metrics"] is metrics.metrics_of(app)
    assert seen["time_left"] is None  # the socket has no request deadline


@pytest.mark.parametrize("marked", [True, False])
async def test_a_refused_upgrade_has_problem_details_and_the_usual_headers(
    aiohttp_client: Any, tmp_path: Any, marked: bool
) -> None:
    async def ws(request: web.Request) -> web.StreamResponse:
        refusal = problem_response(Forbidden("this origin may not open sockets here"), request)
        return socket_refusal(request, refusal) if marked else refusal

    app = _app(tmp_path, answers_own_failures(ws) if marked else ws)
    client = await aiohttp_client(app)
    response = await client.get("/ws", headers={REQUEST_ID_HEADER: "socket-02", "Origin": ORIGIN})
    body = await response.json(content_type=None)
    assert (response.status, body["code"]) == (403, "forbidden")
    assert response.headers[REQUEST_ID_HEADER] == "socket-02"
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Credentials" in response.headers
    registry = metrics.metrics_of(app).registry
    counted = registry.get_sample_value("hubbub_http_requests_total", {"status": "4xx"})
    assert counted == 1  # counted once, by status


async def test_a_failing_upgrade_is_problem_details(aiohttp_client: Any, tmp_path: Any) -> None:
    async def ws(request: web.Request) -> web.StreamResponse:
        raise RuntimeError("boom")

    client = await aiohttp_client(_app(tmp_path, ws))
    response = await client.get("/ws", headers={REQUEST_ID_HEADER: "socket-03"})
    body = await response.json(content_type=None)
    assert (response.status, body["code"]) == (500, "internal")
    assert response.headers[REQUEST_ID_HEADER] == "socket-03"


async def test_a_marked_handler_failing_before_the_upgrade_is_problem_details(
    aiohttp_client: Any, tmp_path: Any
) -> None:
    async def ws(request: web.Request) -> web.StreamResponse:
        try:
            raise RuntimeError("boom")
        except Exception as exc:
            return socket_failure(request, exc)

    client = await aiohttp_client(_app(tmp_path, answers_own_failures(ws)))
    response = await client.get("/ws", headers={REQUEST_ID_HEADER: "socket-04", "Origin": ORIGIN})
    body = await response.json(content_type=None)
    assert (response.status, body["code"]) == (500, "internal")
    assert response.headers[REQUEST_ID_HEADER] == "socket-04"
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


async def test_a_rest_request_keeps_its_deadline_and_cors(
    aiohttp_client: Any, tmp_path: Any
) -> None:
    async def ws(request: web.Request) -> web.StreamResponse:
        raise AssertionError("not called")

    state: dict[str, Any] = {}
    client = await aiohttp_client(_app(tmp_path, ws, state))
    request = asyncio.ensure_future(client.get("/api/v1/x", headers={"Origin": ORIGIN}))
    await state["entered"].wait()
    chain = _chain(state["task"])
    state["release"].set()
    response = await request
    body = await response.json()
    assert 0 < body["time_left"] <= 10.0
    assert [n for n in chain if n in MIDDLEWARE_COROUTINES] == [
        "_http_request",
        "_within_deadline",
    ]
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Cache-Control"] == "no-store"


async def test_a_request_past_its_deadline_is_a_504_with_cors(
    aiohttp_client: Any, tmp_path: Any
) -> None:
    """Cut off by the request deadline (not a bus call's timeout): still answered with
    the CORS headers a browser on the allowed origin needs to read it."""

    async def ws(request: web.Request) -> web.StreamResponse:
        raise AssertionError("not called")

    state: dict[str, Any] = {}  # its handler waits for a release that never comes
    client = await aiohttp_client(_app(tmp_path, ws, state, request_timeout_s=0.05))
    response = await client.get("/api/v1/x", headers={"Origin": ORIGIN})
    body = await response.json(content_type=None)
    assert (response.status, body["code"]) == (504, "timeout")
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Vary"] == "Origin"
