"""The ``hubbub`` command refuses arguments it cannot honour before it does anything:
argparse's usage error (exit 2) with the reason, not a failure halfway through."""

from __future__ import annotations

import pytest

from cli.main import parse_args


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The reason argparse gives for refusing ``argv``."""
    with pytest.raises(SystemExit) as exited:
        parse_args(list(argv))
    assert exited.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("port", ["0", "-1", "65536", "http"])
@pytest.mark.parametrize("command", ["up", "serve"])
def test_a_port_is_1_to_65535(capsys: pytest.CaptureFixture[str], command: str, port: str) -> None:
    assert "--port takes a port number, 1 to 65535" in refused(capsys, command, "--port", port)


def test_a_port_in_range_is_taken() -> None:
    assert parse_args(["up", "--port", "65535"]).port == 65535
    assert parse_args(["serve", "--port", "1"]).port == 1


@pytest.mark.parametrize("hubs", ["0", "-2", "two"])
def test_up_runs_at_least_one_hub(capsys: pytest.CaptureFixture[str], hubs: str) -> None:
    assert "--hubs takes a number of at least 1" in refused(capsys, "up", "--hubs", hubs)


@pytest.mark.parametrize("nodes", ["0", "6"])
def test_up_runs_1_to_5_nats_nodes(capsys: pytest.CaptureFixture[str], nodes: str) -> None:
    assert "--nats-nodes takes 1 to 5" in refused(capsys, "up", "--nats-nodes", nodes)


def test_mail_shows_at_least_one_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--limit takes a number of at least 1" in refused(capsys, "mail", "--limit", "0")


def test_a_downgrade_names_its_revision(capsys: pytest.CaptureFixture[str]) -> None:
    """Without one it would go "down" to head, the default of an upgrade: nothing."""
    assert "--down needs --revision" in refused(capsys, "migrate", "--down")
    args = parse_args(["migrate", "--down", "--revision", "base"])
    assert (args.down, args.revision) == (True, "base")
    assert parse_args(["migrate"]).revision == "head"
