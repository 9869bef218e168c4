"""The bus benchmark's NATS runs as production's does (cli/embedded/nats_auth.py): the
same two accounts, JetStream in the main one, the publications exported to the
services' account; its users log in and reach JetStream."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from bench.bus import BARE_NAMESPACE, NAMESPACE, auth_config
from cli.embedded import EmbeddedNats
from cli.embedded.nats_auth import MAIN_ACCOUNT, NatsAuthFolder
from hubbub.natsauth import NatsAuth
from hubbub.natsconn import connect_nats


def _accounts(text: str) -> dict[str, Any]:
    body = "".join(line for line in text.splitlines(True) if not line.startswith("#"))
    assert body.startswith("accounts "), body[:40]
    accounts: dict[str, Any] = orjson.loads(body.removeprefix("accounts "))
    return accounts


def test_the_bench_config_has_production_s_accounts(tmp_path: Path) -> None:
    bench = _accounts(auth_config(tmp_path).read_text())
    production = _accounts(NatsAuthFolder(tmp_path, NAMESPACE).render())
    assert bench.keys() == production.keys()
    for name, account in production.items():
        assert {
            k: v for k, v in bench[name].items() if k not in ("users", "exports", "imports")
        } == {k: v for k, v in account.items() if k not in ("users", "exports", "imports")}
    exported = {e["service"] for e in bench[MAIN_ACCOUNT].get("exports", [])}
    assert exported == {f"{NAMESPACE}.evt.>", f"{BARE_NAMESPACE}.evt.>"}
    main_users = {u["user"] for u in bench[MAIN_ACCOUNT]["users"]}
    assert main_users == {u["user"] for u in production[MAIN_ACCOUNT]["users"]}


async def test_its_users_log_in_and_use_jetstream(tmp_path: Path) -> None:
    config = auth_config(tmp_path)
    server = EmbeddedNats(tmp_path / "nats", config=config)
    url = await asyncio.to_thread(server.start)
    folder = NatsAuthFolder(tmp_path, NAMESPACE)
    try:
        for role in ("hub", "worker"):
            conn = await connect_nats(
                url, f"bench-{role}", auth=NatsAuth(user=role, password=folder.password(role))
            )
            try:
                if role == "worker":
                    await conn.jetstream().account_info()
            finally:
                await conn.close()
    finally:
        await asyncio.to_thread(server.stop)
