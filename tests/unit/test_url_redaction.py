"""What `hubbub check` and the `hubbub up` banner print of a service URL: never a
password or a token, and never a crash, whatever form the URL takes."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.admin.system import redact, without_user_info
from cli.supervisor import Supervisor
from hubbub.config import Settings


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ("nats://svc:s3cret@h:1", "nats://svc:***@h:1"),
        (
            "nats://svc:s3cret@h:1,nats://svc:s3cret@h:2",
            "nats://svc:***@h:1,nats://svc:***@h:2",
        ),
        ("nats://h:1,nats://svc:other@h:2", "nats://h:1,nats://svc:***@h:2"),
        ("nats://mytoken123@h:1", "nats://***@h:1"),
        ("tls://mytoken123@h:1,tls://mytoken123@h:2", "tls://***@h:1,tls://***@h:2"),
        ("redis://:s3cret@h:6379/0", "redis://:***@h:6379/0"),
        (
            "postgresql+asyncpg://hubbub:s3cret@db:5432/hubbub",
            "postgresql+asyncpg://hubbub:***@db:5432/hubbub",
        ),
        # A user name alone is no secret in a database URL (the embedded PostgreSQL's).
        (
            "postgresql+asyncpg://postgres@127.0.0.1:5/x",
            "postgresql+asyncpg://postgres@127.0.0.1:5/x",
        ),
        ("nats://svc:s3cret@[::1]:4222", "nats://svc:***@[::1]:4222"),
    ],
)
def test_a_url_is_shown_without_its_secret(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("nats://svc:s3cret@h:notaport", "nats://svc:***@h:notaport"),
        ("nats://svc:s3cret@[::1", "nats://***"),  # no URL: nothing of it but the scheme
        ("svc:s3cret@h:4222", "***"),
    ],
)
def test_a_malformed_url_is_shown_without_its_secret(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize(
    ("url", "bare"),
    [
        ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ("nats://ops:s3cret@h:1, nats://tok3n@h:2", "nats://h:1,nats://h:2"),
        ("tls://ops@[::1]:4222", "tls://[::1]:4222"),
        ("nats://ops:s3cret@[::1", "nats://***"),  # no URL: as redact shows it
    ],
)
def test_a_url_for_a_client_with_its_own_credentials_has_no_user_info(url: str, bare: str) -> None:
    assert without_user_info(url) == bare


def test_the_up_banner_shows_no_password_of_an_external_service(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    supervisor = Supervisor(settings, frontend=False)
    supervisor.hub_ports, supervisor.admin_ports = [8000], [9000]
    supervisor._print_banner(
        {
            "DATABASE_URL": "postgresql+asyncpg://hubbub:pg-s3cret@db:5432/hubbub",
            "NATS_URL": "nats://svc:nats-s3cret@h:1,nats://svc:nats-s3cret@h:2",
            "REDIS_URL": "redis://:redis-s3cret@h:6379/0",
        }
    )
    out = capsys.readouterr().out
    assert "s3cret" not in out
    assert "nats://svc:***@h:1,nats://svc:***@h:2" in out
