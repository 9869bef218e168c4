"""How a process proves who it is to NATS: the credential settings, as nats-py options.

The usual NATS ways, from the settings (``hubbub/config.py``): a creds file
(``NATS_CREDS``), an nkey seed file (``NATS_NKEY_SEED``), a user and password
(``NATS_USER``, ``NATS_PASSWORD`` or ``NATS_PASSWORD_FILE``) or a token
(``NATS_TOKEN``); TLS with ``NATS_TLS_CA`` and a client certificate
(``NATS_TLS_CERT``/``NATS_TLS_KEY``). None of them set: an anonymous connection, which
an unauthenticated server (a developer's own, the test suite's) accepts.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hubbub.config import Settings

# Reply inboxes. Hubs receive the workers' replies under a prefix of their own, which only
# the hub user may subscribe to; a backend service's JetStream acks come to its own.
HUB_INBOX_PREFIX = "_HUB"
SERVICE_INBOX_PREFIX = "_SVC"


@dataclass(frozen=True)
class NatsAuth:
    creds: Path | None = None
    nkey_seed: Path | None = None
    user: str | None = None
    password: str | None = None
    token: str | None = None
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> NatsAuth:
        password = settings.nats_password
        if password is None and settings.nats_password_file is not None:
            password = settings.nats_password_file.read_text().strip()
        return cls(
            creds=settings.nats_creds,
            nkey_seed=settings.nats_nkey_seed,
            user=settings.nats_user,
            password=password,
            token=settings.nats_token,
            tls_ca=settings.nats_tls_ca,
            tls_cert=settings.nats_tls_cert,
            tls_key=settings.nats_tls_key,
        )

    def options(self) -> dict[str, Any]:
        """Keyword arguments for ``nats.aio.client.Client.connect``."""
        options: dict[str, Any] = {}
        if self.creds is not None:
            options["user_credentials"] = str(self.creds)
        if self.nkey_seed is not None:
            options["nkeys_seed"] = str(self.nkey_seed)
        if self.user is not None:
            options["user"] = self.user
            options["password"] = self.password or ""
        if self.token is not None:
            options["token"] = self.token
        if self.tls_ca is not None or self.tls_cert is not None:
            context = ssl.create_default_context(
                cafile=str(self.tls_ca) if self.tls_ca is not None else None
            )
            if self.tls_cert is not None:
                context.load_cert_chain(
                    str(self.tls_cert), str(self.tls_key) if self.tls_key is not None else None
                )
            options["tls"] = context
        return options


ANONYMOUS = NatsAuth()


def nats_auth(settings: Settings) -> NatsAuth:
    return NatsAuth.from_settings(settings)
