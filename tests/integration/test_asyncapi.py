"""The AsyncAPI document: generated from the contracts, accepted by the official parser
(``@asyncapi/parser``, through ``frontend/scripts/asyncapi.mjs``), served by the hub and
printed by ``hubbub asyncapi``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

import cli.main as cli
from hub.app import create_app
from hubbub.config import Settings
from hubbub.contracts.api import default_catalog
from hubbub.contracts.asyncapi import build_document
from hubbub.contracts.channels import ChannelKind
from hubbub.contracts.event_types import EVENT_TYPES, on_channel
from hubbub.contracts.frames import COMMANDS, PUSHES
from hubbub.contracts.operations import Access
from hubbub.contracts.protocol import Op

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
SCRIPT = FRONTEND / "scripts" / "asyncapi.mjs"


def parse_with_the_official_parser(document: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node, "node is not on PATH: the AsyncAPI document is validated by @asyncapi/parser"
    assert (FRONTEND / "node_modules" / "@asyncapi" / "parser").is_dir(), (
        "frontend/node_modules has no @asyncapi/parser: run `cd frontend && npm ci`"
    )
    return subprocess.run(
        [node, str(SCRIPT), "validate", str(document)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def document() -> dict[str, Any]:
    return build_document(default_catalog())


class TestTheOfficialParser:
    def test_it_accepts_what_hubbub_asyncapi_prints(self, tmp_path: Path) -> None:
        target = tmp_path / "asyncapi.json"
        assert cli.main(["asyncapi", "--output", str(target)]) == 0
        parsed = parse_with_the_official_parser(target)
        assert parsed.returncode == 0, parsed.stdout + parsed.stderr
        assert "is valid AsyncAPI 3.0.0" in parsed.stdout

    def test_it_refuses_a_broken_document(self, tmp_path: Path, document: dict[str, Any]) -> None:
        """The check can fail: an operation on a channel that does not exist."""
        document["operations"]["send_connect"]["channel"] = {"$ref": "#/channels/nowhere"}
        target = tmp_path / "broken.json"
        target.write_bytes(orjson.dumps(document))
        parsed = parse_with_the_official_parser(target)
        assert parsed.returncode == 1
        assert "not a valid AsyncAPI document" in parsed.stderr


class TestContents:
    def test_every_command_and_push_is_a_socket_message(self, document: dict[str, Any]) -> None:
        socket = document["channels"]["socket"]["messages"]
        assert {f"command_{op.value}" for op in COMMANDS if op is not Op.RPC} <= set(socket)
        assert {f"push_{push.value}" for push in PUSHES} <= set(socket)
        connect = document["operations"]["send_connect"]
        assert connect["reply"]["messages"] == [
            {"$ref": "#/channels/socket/messages/result_connect"},
            {"$ref": "#/channels/socket/messages/error"},
        ]
        assert "reply" not in document["operations"]["send_pong"]

    def test_every_public_operation_is_an_rpc_message_with_its_schemas(
        self, document: dict[str, Any]
    ) -> None:
        messages = document["components"]["messages"]
        schemas = document["components"]["schemas"]
        for op in default_catalog():
            key = "rpc_" + op.name.replace(".", "_")
            if op.access in (Access.INTERNAL, Access.SERVICE):
                assert key not in messages, op.name
                continue
            command = messages[key]["payload"]["properties"]
            assert command["method"]["const"] == op.name
            assert command["params"]["$ref"].rsplit("/", 1)[1] in schemas
            assert ("idempotency_key" in command) == op.mutating
            result = messages[f"{key}_result"]["payload"]["properties"]["result"]
            assert result["$ref"].rsplit("/", 1)[1] in schemas

    def test_every_channel_kind_carries_its_catalog_events(self, document: dict[str, Any]) -> None:
        messages = document["components"]["messages"]
        for kind in ChannelKind:
            channel = document["channels"][kind.value]
            assert channel["address"] == f"{kind.value}:{{name}}"
            events = {
                messages[ref["$ref"].rsplit("/", 1)[1]]["name"]
                for ref in channel["messages"].values()
            } - {"publication", "chat_message"}
            assert events == {event.name for event in on_channel(kind)}, kind
        for event in EVENT_TYPES.values():
            payload = messages["event_" + event.name.replace(".", "_")]["payload"]
            assert payload["properties"]["type"]["const"] == event.name
            data = payload["properties"]["data"]["$ref"].rsplit("/", 1)[1]
            assert data == event.data.__name__


class TestServedAndPrinted:
    async def test_the_hub_serves_what_hubbub_asyncapi_prints(
        self,
        settings: Settings,
        aiohttp_client: Any,
        capsysbinary: pytest.CaptureFixture[bytes],
    ) -> None:
        client = await aiohttp_client(create_app(settings))  # the production catalog
        response = await client.get("/api/v1/asyncapi.json")
        assert (response.status, response.content_type) == (200, "application/json")
        assert cli.main(["asyncapi"]) == 0
        assert orjson.loads(capsysbinary.readouterr().out) == await response.json()

    def test_output_writes_the_printed_document(
        self, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
    ) -> None:
        target = tmp_path / "asyncapi.json"
        assert cli.main(["asyncapi", "--output", str(target)]) == 0
        assert cli.main(["asyncapi"]) == 0
        assert target.read_bytes() == capsysbinary.readouterr().out

    def test_an_unwritable_output_is_a_clear_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert cli.main(["asyncapi", "--output", str(tmp_path / "missing" / "x.json")]) == 1
        assert capsys.readouterr().err.startswith("hubbub: cannot write ")
