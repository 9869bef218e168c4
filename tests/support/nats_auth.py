"""An embedded NATS that refuses anonymous clients, as `hubbub up` runs it: the
credentials folder, settings that connect as one of its roles, and a connection that
puts this test's streams in place and takes them away after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NATS
from nats.errors import TimeoutError as NatsTimeoutError

from cli.embedded.nats_auth import NatsAuthFolder
from hubbub.config import Settings
from hubbub.contracts.subjects import Subjects
from hubbub.natsauth import nats_auth
from hubbub.natsconn import connect_nats
from hubbub.streams import delete_streams, ensure_streams, stream_replicas
from tests.support.waiting import eventually


def made_auth_folder(tmp_path: Path, namespace: str) -> NatsAuthFolder:
    """The role passwords and the server config, under ``tmp_path/nats-auth``."""
    folder = NatsAuthFolder(tmp_path / "nats-auth", namespace)
    folder.ensure()
    return folder


def as_role(settings: Settings, folder: NatsAuthFolder, role: str, **update: Any) -> Settings:
    """``settings`` that connect as ``role`` (``hub`` or ``worker``), with ``update``."""
    return settings.model_copy(
        update={"nats_user": role, "nats_password": folder.password(role), **update}
    )


@asynccontextmanager
async def streams_connection(settings: Settings) -> AsyncIterator[NATS]:
    """A connection with ``settings`` (the worker's: the streams need it) and this test's
    streams, kept by as many nodes as ``settings`` name; deleted and closed after. Right
    after a node's death a cluster may take a few seconds to answer the deletion."""
    assert settings.nats_url
    conn = await connect_nats(settings.nats_url, "hubbub-test", auth=nats_auth(settings))
    subjects = Subjects(settings.namespace)
    try:
        await ensure_streams(
            conn.jetstream(), subjects, settings.policies(), replicas=stream_replicas(settings)
        )
        yield conn

        async def deleted() -> None:
            try:
                await delete_streams(conn.jetstream(), subjects)
            except NatsTimeoutError as exc:
                raise AssertionError("the streams could not be deleted yet") from exc

        await eventually(deleted, timeout=30)
    finally:
        await conn.close()
