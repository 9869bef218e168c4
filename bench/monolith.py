"""The seed's stack, for ``bench rpc``'s baseline: FastAPI + SQLAlchemy async, one process.

    python -m bench.monolith [--port 0]   # env: DATABASE_URL, HUBBUB_SECRET_KEY

It serves the same read as Hubbub's ``users.me`` against the same database, the way a
monolith would: uvicorn (uvloop, httptools) in one process, the access JWT verified
with ``hubbub.tokens`` (the hub's verifier, same settings), the row read with the
handler's own query (``handlers.accounts.users.current_user``: ``session.get(User)`` in
an ``AsyncSession``, is-active check) on an asyncpg pool of the size a worker uses, the
result shaped by the handler's ``to_public``.

Two ways in, so that one client drives both targets:

* ``/ws`` speaks the subset of Hubbub's WebSocket protocol (``hubbub.v1.json``) that
  ``HubbubClient`` needs for RPC: a ``connect`` frame with the token first, then ``rpc``
  frames, each answered ``{"id", "result"}`` or ``{"id", "error"}``; RPCs on one socket
  run concurrently, as the hub runs them.
* ``GET /users/me`` with ``Authorization: Bearer <token>``.

It prints ``PORT <n>`` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI, Header, HTTPException, Request, Response, WebSocket
from fastapi.websockets import WebSocketDisconnect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from cli.embedded.process import die_with_parent
from handlers.accounts.users import by_id, to_public
from hubbub.config import Settings
from hubbub.contracts.api.users import UserPublic
from hubbub.contracts.errors import NotFound, Unauthorized
from hubbub.contracts.protocol import SUBPROTOCOL
from hubbub.tokens import AccessTokens

PING_INTERVAL_S = 3600  # no pings: the connect result says so to the client


@dataclass(slots=True)
class State:
    tokens: AccessTokens
    sessions: async_sessionmaker[AsyncSession]


async def users_me(state: State, user_id: str) -> UserPublic:
    """``users.me``: the caller's row, read as the handler reads it."""
    async with state.sessions() as session:
        try:
            user = await by_id(session, user_id)
        except NotFound:
            raise Unauthorized("this account no longer exists") from None
        if not user.is_active:
            raise Unauthorized("this account is deactivated")
        return to_public(user)


def create_app(settings: Settings) -> FastAPI:
    if not settings.database_url:
        raise SystemExit("DATABASE_URL is needed")
    database_url = settings.database_url

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_async_engine(
            database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        app.state.monolith = State(
            AccessTokens.from_settings(settings, signing=False),
            async_sessionmaker(engine, expire_on_commit=False),
        )
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/users/me")
    async def get_me(request: Request, authorization: str = Header("")) -> Response:
        state: State = request.app.state.monolith
        scheme, _, token = authorization.partition(" ")
        try:
            if scheme.lower() != "bearer" or not token:
                raise Unauthorized("a bearer token is needed")
            user = await users_me(state, state.tokens.verify(token).sub)
        except Unauthorized as exc:
            raise HTTPException(401, str(exc)) from None
        return Response(user.model_dump_json(), media_type="application/json")

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        state: State = websocket.app.state.monolith
        await websocket.accept(subprotocol=SUBPROTOCOL)
        try:
            first = orjson.loads(await websocket.receive_text())
            try:
                if first.get("op") != "connect":
                    raise Unauthorized("connect first")
                claims = state.tokens.verify(str(first.get("token", "")))
            except Unauthorized as exc:
                await websocket.send_text(error(first.get("id"), "unauthorized", str(exc)))
                await websocket.close(4001)
                return
            connected = {"client": uuid.uuid4().hex, "ping_interval": PING_INTERVAL_S}
            reply = {"id": first.get("id"), "result": connected}
            await websocket.send_text(orjson.dumps(reply).decode())
            running: set[asyncio.Task[None]] = set()
            while True:
                frame = orjson.loads(await websocket.receive_text())
                if frame.get("op") != "rpc":
                    continue  # e.g. a pong
                task = asyncio.create_task(rpc(websocket, state, claims.sub, frame))
                running.add(task)
                task.add_done_callback(running.discard)
        except WebSocketDisconnect:
            return

    return app


async def rpc(websocket: WebSocket, state: State, user_id: str, frame: dict[str, Any]) -> None:
    command_id = frame.get("id")
    if frame.get("method") != "users.me":
        await websocket.send_text(error(command_id, "not_found", "no such method"))
        return
    try:
        user = await users_me(state, user_id)
    except Unauthorized as exc:
        await websocket.send_text(error(command_id, "unauthorized", str(exc)))
        return
    reply = b'{"id":%s,"result":%s}' % (orjson.dumps(command_id), user.model_dump_json().encode())
    await websocket.send_text(reply.decode())


def error(command_id: object, code: str, message: str) -> str:
    return orjson.dumps({"id": command_id, "error": {"code": code, "message": message}}).decode()


async def start(env: dict[str, str], cwd: str) -> tuple[asyncio.subprocess.Process, int]:
    """Run ``python -m bench.monolith`` with ``env``; its process and port once it
    accepts connections (uvicorn opens the socket after the app's start-up)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.monolith", env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, preexec_fn=die_with_parent(),
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(60):
            line = (await proc.stdout.readline()).decode()
            if not line.startswith("PORT "):
                raise RuntimeError(f"the monolith did not start: {line!r}")
            port = int(line.split()[1])
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    if proc.returncode is not None:
                        raise RuntimeError("the monolith exited") from None
                    await asyncio.sleep(0.1)
                    continue
                writer.close()
                return proc, port
    except BaseException:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        raise


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            async with asyncio.timeout(15):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    settings = Settings()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(
        create_app(settings),
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        access_log=False,
        log_level="warning",
        lifespan="on",
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
