"""Settings: the env file documents them all, the dev secret, production's refusal."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from cli.runtime import dev_secret, with_secret
from hubbub.config import (
    ConfigError,
    Environment,
    Rate,
    Settings,
    normalize_database_url,
)

ROOT = Path(__file__).resolve().parents[2]


def settings(**kwargs: object) -> Settings:
    return Settings(_env_file=None, **kwargs)  # type: ignore[arg-type]


class TestEnvExample:
    def test_every_setting_is_documented_in_env_example(self) -> None:
        """A setting missing from .env.example is a setting nobody can discover."""
        text = (ROOT / ".env.example").read_text()
        documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
        expected = set()
        for name, field in Settings.model_fields.items():
            alias = field.validation_alias
            choices = getattr(alias, "choices", None)
            expected.add(str(choices[0]) if choices else f"HUBBUB_{name.upper()}")
        assert expected - documented == set()
        assert documented - expected == set()


class TestDatabaseUrl:
    @pytest.mark.parametrize(
        "given",
        [
            "postgres://u@h:5432/db",
            "postgresql://u@h:5432/db",
            "postgresql+asyncpg://u@h:5432/db",
        ],
    )
    def test_common_schemes_become_asyncpg(self, given: str) -> None:
        assert normalize_database_url(given) == "postgresql+asyncpg://u@h:5432/db"

    def test_the_env_var_is_normalized_on_load(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DATABASE_URL", "postgres://x@y/z")
        assert settings().database_url == "postgresql+asyncpg://x@y/z"


class TestPasswordFiles:
    def test_the_files_password_goes_into_the_url_in_place_of_its_own(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (tmp_path / "db").write_text("n3w/p@ss\n")
        (tmp_path / "redis").write_text("r3dis\n")
        monkeypatch.setenv("DATABASE_URL", "postgres://hubbub:old@postgres:5432/hubbub")
        monkeypatch.setenv("DATABASE_PASSWORD_FILE", str(tmp_path / "db"))
        monkeypatch.setenv("REDIS_URL", "redis://redis:6379/0")
        monkeypatch.setenv("REDIS_PASSWORD_FILE", str(tmp_path / "redis"))
        loaded = settings()
        assert (
            loaded.database_url == "postgresql+asyncpg://hubbub:n3w%2Fp%40ss@postgres:5432/hubbub"
        )
        assert loaded.redis_url == "redis://:r3dis@redis:6379/0"

    @pytest.mark.parametrize("server", ["REDIS", "DATABASE"])
    def test_a_file_without_its_url_is_refused(
        self, server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`hubbub up` fills unset URLs with its embedded servers', passwords included, and
        hands them to its children: a file there would replace the embedded password."""
        monkeypatch.delenv(f"{server}_URL", raising=False)
        monkeypatch.delenv(f"HUBBUB_{server}_URL", raising=False)
        (tmp_path / "pw").write_text("other\n")
        monkeypatch.setenv(f"{server}_PASSWORD_FILE", str(tmp_path / "pw"))
        with pytest.raises(
            ConfigError, match=f"{server}_PASSWORD_FILE is set without {server}_URL"
        ):
            settings()


class TestSecrets:
    def test_a_dev_secret_is_generated_once_and_kept_private(self, tmp_path: Path) -> None:
        first = dev_secret(tmp_path)
        assert len(first) >= 32
        assert dev_secret(tmp_path) == first
        mode = stat.S_IMODE((tmp_path / "secret_key").stat().st_mode)
        assert mode == 0o600

    def test_development_without_a_secret_uses_the_kept_one(self, tmp_path: Path) -> None:
        resolved = with_secret(settings(state_dir=tmp_path))
        assert resolved.secret_key == (tmp_path / "secret_key").read_text().strip()

    def test_production_without_a_secret_refuses_to_start(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="HUBBUB_SECRET_KEY is not set"):
            with_secret(settings(env=Environment.PRODUCTION, state_dir=tmp_path))
        assert not (tmp_path / "secret_key").exists()

    def test_a_configured_secret_wins(self, tmp_path: Path) -> None:
        configured = settings(secret_key="s" * 40, state_dir=tmp_path)
        assert with_secret(configured).secret_key == "s" * 40

    def test_a_short_secret_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="at least 32"):
            settings(secret_key="short")


class TestLists:
    def test_cors_origins_are_comma_separated(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("HUBBUB_CORS_ORIGINS", "https://a.example, https://b.example")
        assert settings().cors_origins == ["https://a.example", "https://b.example"]


class TestRates:
    def test_a_rate_is_count_per_seconds(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("HUBBUB_RATE_LOGIN_IP", "5/30")
        assert settings().rate_login_ip == Rate(5, 30)

    @pytest.mark.parametrize("bad", ["5", "0/60", "5/0", "five/60", "5/-1"])
    def test_a_malformed_rate_is_refused(self, bad: str) -> None:
        with pytest.raises(ValueError, match="COUNT/SECONDS"):
            settings(rate_login_ip=bad)

    def test_the_default_login_limits(self) -> None:
        assert (
            settings().rate_login_ip,
            settings().rate_login_account_ip,
            settings().rate_login_account,
        ) == (Rate(10, 60), Rate(5, 300), Rate(100, 3600))


class TestTrustedProxies:
    def test_networks_are_comma_separated(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("HUBBUB_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")
        assert settings().trusted_proxies == ["10.0.0.0/8", "127.0.0.1"]

    def test_a_bad_network_is_refused(self) -> None:
        with pytest.raises(ValueError, match="does not appear to be"):
            settings(trusted_proxies=["10.0.0.0/33"])


class TestPublicUrl:
    @pytest.mark.parametrize("url", ["https://hub.example", "http://127.0.0.1:8000/"])
    def test_an_absolute_http_url_is_taken(self, url: str) -> None:
        assert settings(public_url=url).public_url == url

    @pytest.mark.parametrize(
        "bad", ["hub.example", "null", "ftp://hub.example", "https://", "http://[::1"]
    )
    def test_anything_else_is_refused_naming_the_setting(self, bad: str) -> None:
        with pytest.raises(ConfigError, match="HUBBUB_PUBLIC_URL"):
            settings(public_url=bad)

    def test_unset_or_empty_is_no_public_url(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("HUBBUB_PUBLIC_URL", "")
        assert settings().public_url is None
