"""Settings from the environment and ``.env`` (pydantic-settings).

Every setting is documented in ``.env.example``; a test keeps the two in step. The three
service URLs use their conventional names (``DATABASE_URL``, ``NATS_URL``,
``REDIS_URL``); everything else is ``HUBBUB_*``.

Settings only read the environment: nothing here reads or writes the state folder. The
``hubbub`` command (cli/runtime.py) adds the development secret and the URLs of a
running ``hubbub up``, and hands a hub or worker what it needs through its environment.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import AliasChoices, BeforeValidator, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from hubbub.contracts.channels import (
    DEFAULT_POLICIES,
    ChannelKind,
    ChannelPolicy,
    SlowConsumerPolicy,
    SubscribeRule,
)


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which and how to fix it."""


def normalize_database_url(url: str) -> str:
    """Accept ``postgres://``, ``postgresql://`` or ``postgresql+asyncpg://``."""
    for prefix in (
        "postgres://",
        "postgresql://",
        "postgresql+psycopg://",
        "postgresql+psycopg2://",
    ):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def url_with_password(url: str, password: str) -> str:
    """``url`` with ``password`` (percent-encoded) as its password; its user, if any, kept."""
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0] if at else ""
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}"))


def _read_password(path: Path, setting: str) -> str:
    try:
        password = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{setting}={path}: cannot read it: {exc.strerror}") from None
    if not password:
        raise ConfigError(f"{setting}={path}: the file is empty")
    return password


@dataclass(frozen=True, slots=True)
class Rate:
    """A rate limit: at most ``count`` events per ``per_s`` seconds. Written ``10/60``."""

    count: int
    per_s: int

    @staticmethod
    def parse(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*s?\s*", value)
        if match is None or int(match[1]) < 1 or int(match[2]) < 1:
            raise ValueError(f"a rate is COUNT/SECONDS with both at least 1, like 10/60: {value!r}")
        return Rate(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return f"{self.count}/{self.per_s}"


RateSetting = Annotated[Rate, NoDecode, BeforeValidator(Rate.parse)]


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HUBBUB_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # --- deployment ---------------------------------------------------------------
    env: Environment = Environment.DEVELOPMENT
    state_dir: Path = Path(".hubbub")
    namespace: str = Field(default="", pattern=r"^[a-z0-9_-]{0,32}$")

    # --- services (unset → `hubbub up` starts the embedded one) ---------------------
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "HUBBUB_DATABASE_URL")
    )
    nats_url: str | None = Field(
        default=None, validation_alias=AliasChoices("NATS_URL", "HUBBUB_NATS_URL")
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "HUBBUB_REDIS_URL")
    )
    # The password of DATABASE_URL / REDIS_URL, read from a file (compose hands its
    # generated ones over so, never in the environment): put into the URL as the
    # settings load, in place of any password the URL has.
    database_password_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_PASSWORD_FILE", "HUBBUB_DATABASE_PASSWORD_FILE"),
    )
    redis_password_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_PASSWORD_FILE", "HUBBUB_REDIS_PASSWORD_FILE"),
    )
    # NATS credentials, the usual NATS ways (hubbub/natsauth.py; docs/architecture.md,
    # "Who may do what on NATS"). Unset with an embedded NATS: `hubbub up` gives each
    # process its role's. A creds file or nkey seed needs nats-py's `nkeys` extra.
    nats_creds: Path | None = Field(
        default=None, validation_alias=AliasChoices("NATS_CREDS", "HUBBUB_NATS_CREDS")
    )
    nats_nkey_seed: Path | None = Field(
        default=None, validation_alias=AliasChoices("NATS_NKEY_SEED", "HUBBUB_NATS_NKEY_SEED")
    )
    nats_user: str | None = Field(
        default=None, validation_alias=AliasChoices("NATS_USER", "HUBBUB_NATS_USER")
    )
    nats_password: str | None = Field(
        default=None, validation_alias=AliasChoices("NATS_PASSWORD", "HUBBUB_NATS_PASSWORD")
    )
    nats_password_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("NATS_PASSWORD_FILE", "HUBBUB_NATS_PASSWORD_FILE"),
    )
    nats_token: str | None = Field(
        default=None, validation_alias=AliasChoices("NATS_TOKEN", "HUBBUB_NATS_TOKEN")
    )
    nats_tls_ca: Path | None = Field(
        default=None, validation_alias=AliasChoices("NATS_TLS_CA", "HUBBUB_NATS_TLS_CA")
    )
    nats_tls_cert: Path | None = Field(
        default=None, validation_alias=AliasChoices("NATS_TLS_CERT", "HUBBUB_NATS_TLS_CERT")
    )
    nats_tls_key: Path | None = Field(
        default=None, validation_alias=AliasChoices("NATS_TLS_KEY", "HUBBUB_NATS_TLS_KEY")
    )
    # On a NATS cluster (NATS_URL a comma-separated list): how many nodes keep each
    # JetStream stream (hubbub/streams.py); 0: one per server in NATS_URL, at most 3.
    nats_replicas: int = Field(default=0, ge=0, le=5)
    # PostgreSQL connections per worker process: the engine's pool (size + overflow) and
    # the read pool of read-only operations (handlers/db.py ReadPool), opened on use.
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_read_pool_size: int = Field(default=4, ge=1)
    # How long a request that writes waits for one of the engine's connections
    # (workers/execution.py): then `unavailable` "busy", which the hub sends elsewhere.
    # Never past the request's deadline. Also the longest any checkout of the worker's
    # pool waits (reads, the relay, background jobs; workers/app.py): then a 503.
    db_wait_s: float = Field(default=1.0, gt=0)
    # Redis (hubbub/redisconn.py): a pool of at most `redis_pool_size` connections per
    # process; a caller waits up to `redis_pool_timeout_s` for a free one, then gets
    # `unavailable`. `redis_timeout_s` bounds connecting and each reply.
    redis_pool_size: int = Field(default=64, ge=1)
    redis_pool_timeout_s: float = Field(default=2.0, gt=0)
    redis_timeout_s: float = Field(default=5.0, gt=0)

    # --- the hub --------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = None  # how browsers reach the hub; printed by `hubbub up`
    frontend_dir: Path | None = None  # the built frontend (static export) to serve
    # The longest the hub spends on one REST request, from its headers to the answer:
    # receiving the body and the worker's reply (hub/deadlines.py). A body still
    # arriving then: 408; else 504. A bus call's deadline never runs past it.
    request_timeout_s: float = Field(default=10.0, gt=0)
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    shutdown_timeout_s: float = Field(default=10.0, gt=0)
    listen_backlog: int = Field(default=4096, ge=1)  # pending connections the kernel queues
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    access_log: bool = True

    # The admin listener (hub/admin.py): /metrics and the detailed /ready, on a port of
    # its own that is not the public one. 0: none (`hubbub up` gives each hub one).
    admin_host: str = "127.0.0.1"
    admin_port: int = Field(default=0, ge=0, le=65535)
    # A worker's /metrics (workers/metrics.py), on admin_host; 0: none.
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    # Traces (hubbub/tracing.py): exported over OTLP/HTTP to this collector URL (the
    # SDK's standard variable, or ours); unset: no tracing at all, not even spans.
    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "HUBBUB_OTLP_ENDPOINT"),
    )
    trace_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)  # of new traces, kept
    # Errors to Sentry (hub/telemetry.py, workers/telemetry.py); unset: no reporting.
    sentry_dsn: str | None = Field(
        default=None, validation_alias=AliasChoices("SENTRY_DSN", "HUBBUB_SENTRY_DSN")
    )

    # Proxies (IPs or CIDR networks) whose X-Forwarded-For is believed; empty: none is.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # --- secrets and tokens ------------------------------------------------------------
    secret_key: str | None = Field(default=None, min_length=32)
    # Signs the caller of each request a hub sends to the workers (hubbub/callers.py);
    # unset: derived from secret_key. Hubs and workers must share it.
    caller_key: str | None = Field(default=None, min_length=32)
    jwt_algorithm: Literal["HS256", "EdDSA", "RS256"] = "HS256"
    jwt_private_key_file: Path | None = None  # PEM; workers sign with it (EdDSA/RS256)
    jwt_public_key_file: Path | None = None  # PEM; hubs verify with it (else from the private)
    jwt_issuer: str = Field(default="hubbub", min_length=1)
    jwt_audience: str = Field(default="hubbub", min_length=1)
    jwt_leeway_s: int = Field(default=30, ge=0, le=300)
    access_token_ttl_s: int = Field(default=900, ge=30, le=86_400)
    refresh_token_ttl_s: int = Field(default=14 * 86_400, ge=300)
    session_max_age_s: int = Field(default=90 * 86_400, ge=300)  # however often refreshed
    # A refresh token presented again this soon after its rotation, before its successor
    # was used, gets a new pair instead of ending the session (a retry of a refresh whose
    # answer was lost; handlers/accounts/sessions.py). 0: every reuse ends the session.
    refresh_retry_grace_s: int = Field(default=30, ge=0, le=300)
    cookie_secure: bool = True  # the refresh cookie's Secure flag

    # --- accounts ------------------------------------------------------------------------
    argon2_time_cost: int = Field(default=1, ge=1)
    argon2_memory_kib: int = Field(default=47_104, ge=8)
    argon2_parallelism: int = Field(default=1, ge=1)
    password_hash_threads: int = Field(default=2, ge=1)
    # Hashes that may wait for one of those threads; one more is refused "busy" at once.
    password_hash_queue: int = Field(default=2, ge=0)
    password_reset_ttl_s: int = Field(default=3600, ge=60)
    # Sign-in limits count failures (docs/auth.md "Lock-out policy"): per IP (an IPv6
    # address by its /64), per (account, IP), and per account only from IPs that have not
    # signed in to it within login_known_ip_ttl_s — so strangers cannot lock an owner out.
    rate_login_ip: RateSetting = Rate(10, 60)
    rate_login_account_ip: RateSetting = Rate(5, 300)
    rate_login_account: RateSetting = Rate(100, 3600)
    login_known_ip_ttl_s: int = Field(default=30 * 86_400, ge=60)
    # Successful sign-ins, per IP and per account: looser, and never taken back (each
    # costs an argon2 computation and makes a session).
    rate_login_success_ip: RateSetting = Rate(60, 60)
    rate_login_success_account: RateSetting = Rate(30, 3600)
    # Live sessions one user may have; a sign-in past it ends the least recently used.
    max_sessions_per_user: int = Field(default=50, ge=1)
    rate_register_ip: RateSetting = Rate(20, 3600)
    rate_register_account: RateSetting = Rate(3, 3600)  # "already registered" notes per email
    rate_reset_ip: RateSetting = Rate(10, 3600)
    rate_reset_account_ip: RateSetting = Rate(5, 3600)
    rate_reset_account: RateSetting = Rate(20, 3600)  # from IPs unknown to the account
    email_verification_ttl_s: int = Field(default=2 * 86_400, ge=60)
    rate_verify_user: RateSetting = Rate(5, 3600)  # verification mails a user asks for

    # --- workspaces ------------------------------------------------------------------------
    invitation_ttl_s: int = Field(default=7 * 86_400, ge=60)
    rate_invite_user: RateSetting = Rate(50, 3600)  # invitations and adds per inviting user
    cache_ttl_s: int = Field(default=300, ge=1)  # Redis cache of reads; channel ACL answers

    # --- mail (SMTP when smtp_host is set; else the dev mail catcher) ----------------------
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_tls: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    mail_from: str = "Hubbub <no-reply@localhost>"
    # The SMTP queue (handlers/mail.py): how often a sender looks for due mail unwoken,
    # the first retry delay (then doubling, up to an hour), and tries in all.
    mail_poll_s: float = Field(default=5.0, gt=0)
    mail_retry_base_s: float = Field(default=30.0, gt=0)
    mail_max_attempts: int = Field(default=10, ge=1)

    # --- workers ---------------------------------------------------------------------
    workers: int = Field(default=1, ge=1, le=64)
    worker_concurrency: int = Field(default=256, ge=1)  # messages in flight per process
    mailbox_size: int = Field(default=64, ge=1)  # queued messages per actor key
    actor_idle_s: float = Field(default=30.0, gt=0)  # passivate an actor idle this long
    drain_timeout_s: float = Field(default=10.0, gt=0)
    outbox_poll_s: float = Field(default=1.0, gt=0)
    # Pruning of rows whose use is over (handlers/retention.py).
    janitor_interval_s: float = Field(default=3600.0, gt=0)
    retention_s: int = Field(default=7 * 86_400, ge=0)  # expired tokens, revoked sessions…
    idempotency_ttl_s: int = Field(default=86_400, ge=60)  # a retry after this applies again

    # --- `hubbub up` supervision (cli/restarts.py) --------------------------------------
    # A hub, worker or embedded server that exits is started again after a doubling delay;
    # more than `restart_intensity` restarts of one within the period stop everything.
    restart_intensity: int = Field(default=5, ge=0)
    restart_period_s: float = Field(default=60.0, gt=0)
    restart_backoff_s: float = Field(default=0.5, gt=0)
    restart_backoff_max_s: float = Field(default=10.0, gt=0)

    # --- WebSocket limits and timing (docs/protocol.md) ---------------------------------
    ws_max_frame_bytes: int = Field(default=65_536, ge=1024)
    ws_commands_per_s: float = Field(default=100.0, gt=0)
    ws_commands_burst: int = Field(default=200, ge=1)
    ws_max_subscriptions: int = Field(default=256, ge=1)
    # Bytes of publications all of a hub's channel feeds keep together to answer a
    # resubscribe with a recent `since` from memory (hub/ws/tail.py); 0: read history.
    ws_recovery_tail_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    ws_send_buffer_bytes: int = Field(default=1_048_576, ge=65_536)
    ws_connect_timeout_s: float = Field(default=5.0, gt=0)
    ws_ping_interval_s: float = Field(default=25.0, gt=0)
    ws_expiring_lead_s: float = Field(default=60.0, ge=0)
    ws_expiry_grace_s: float = Field(default=5.0, ge=0)
    ws_max_rpc_in_flight: int = Field(default=64, ge=1)
    ws_max_protocol_errors: int = Field(default=20, ge=1)
    # Open sockets one user may have on one hub; one more is refused at `connect`
    # (`rate_limited`, then close 4008). Counted per hub (docs/protocol.md).
    max_sockets_per_user: int = Field(default=20, ge=1)
    # Bytes of `publish` data one user may send per window, per hub: a token bucket that
    # holds COUNT bytes and refills COUNT every SECONDS. Over it: `rate_limited`.
    ws_publish_bytes_per_user: RateSetting = Rate(1_048_576, 60)
    # The publish API's budget per service API key, per hub: publications, and bytes of
    # stored JSON; each a token bucket that holds COUNT and refills COUNT every SECONDS.
    # Over either: 429 with Retry-After (docs/publishing.md).
    publish_api_per_key: RateSetting = Rate(1000, 10)
    publish_api_bytes_per_key: RateSetting = Rate(16 * 1_048_576, 60)
    presence_ttl_s: float = Field(default=30.0, ge=2)
    # Seconds between a hub's re-checks of its open sockets and subscriptions against the
    # deny-list and current membership (hub/ws/recheck.py); also run after a NATS reconnect.
    recheck_interval_s: float = Field(default=60.0, gt=0)
    # Per channel kind overrides of the defaults in hubbub/contracts/channels.py, as JSON:
    # {"workspace": {"history_max_msgs": 10000, "history_max_age_s": 86400,
    #                "slow_consumer": "disconnect"}}
    channel_policies: dict[str, dict[str, Any]] = Field(default_factory=dict)

    # --- per-user resources --------------------------------------------------------------
    # How many workspaces one account may own; creating one more is 403 (reason "quota").
    max_workspaces_per_user: int = Field(default=100, ge=1)
    # How many members one workspace may have, its pending invitations counted (each may
    # become a member); inviting one more is 403 (reason "quota").
    max_members_per_workspace: int = Field(default=1000, ge=1)

    # --- logs -------------------------------------------------------------------------
    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern=r"^(json|text)$")

    @field_validator("database_url")
    @classmethod
    def _normalize_db(cls, value: str | None) -> str | None:
        return normalize_database_url(value) if value else value

    @model_validator(mode="after")
    def _passwords_from_files(self) -> Settings:
        # A file with no URL to put its password into is refused rather than ignored:
        # `hubbub up` hands its embedded servers' URLs to its children, whose settings
        # would then put the file's password in place of the embedded one's.
        for url, path, names in (
            (
                self.database_url,
                self.database_password_file,
                ("DATABASE_PASSWORD_FILE", "DATABASE_URL"),
            ),
            (self.redis_url, self.redis_password_file, ("REDIS_PASSWORD_FILE", "REDIS_URL")),
        ):
            if path is not None and not url:
                raise ConfigError(
                    f"{names[0]} is set without {names[1]}: it holds {names[1]}'s password; "
                    "set both, or neither (for the embedded server)"
                )
        if self.database_url and self.database_password_file is not None:
            password = _read_password(self.database_password_file, "DATABASE_PASSWORD_FILE")
            self.database_url = url_with_password(self.database_url, password)
        if self.redis_url and self.redis_password_file is not None:
            password = _read_password(self.redis_password_file, "REDIS_PASSWORD_FILE")
            self.redis_url = url_with_password(self.redis_url, password)
        return self

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    def policies(self) -> dict[ChannelKind, ChannelPolicy]:
        """The channel policies: the defaults, with this deployment's overrides."""
        result = dict(DEFAULT_POLICIES)
        for kind_name, override in self.channel_policies.items():
            try:
                kind = ChannelKind(kind_name)
            except ValueError:
                raise ConfigError(
                    f"HUBBUB_CHANNEL_POLICIES: unknown channel kind {kind_name!r}"
                ) from None
            fields = set(ChannelPolicy.__dataclass_fields__)
            unknown = set(override) - fields
            if unknown:
                raise ConfigError(
                    f"HUBBUB_CHANNEL_POLICIES[{kind_name}]: unknown {sorted(unknown)}"
                )
            values = dict(override)
            if "slow_consumer" in values:
                values["slow_consumer"] = SlowConsumerPolicy(values["slow_consumer"])
            if "subscribe" in values:
                values["subscribe"] = SubscribeRule(values["subscribe"])
            result[kind] = replace(result[kind], **values)
        return result

    @field_validator("public_url")
    @classmethod
    def _absolute_http_url(cls, value: str | None) -> str | None:
        """An absolute http(s) URL, or None (unset or empty): the hub compares browsers'
        ``Origin`` with its origin, and prints it for people to open."""
        if not value:
            return None
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - ValueError when the port is not a number
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"HUBBUB_PUBLIC_URL={value!r} is not an absolute http(s) URL: "
                "give where browsers reach the hub, like https://hub.example.com"
            )
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)  # ValueError names the bad entry
        return value

    @property
    def base_url(self) -> str:
        """Where browsers reach the hub: ``public_url``, else the local listen address."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def has_nats_credentials(self) -> bool:
        return any((self.nats_creds, self.nats_nkey_seed, self.nats_user, self.nats_token))

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION
