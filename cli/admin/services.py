"""``hubbub service create/list/revoke``: NATS credentials for backend services, and
``hubbub nats-auth``: the credentials folder and server config, made once.

A service's credential lets it publish to its granted channels on NATS and nothing else
(cli/embedded/nats_auth.py). It is stored in the state folder's ``nats-auth/``, which
the embedded NATS of ``hubbub up`` (and compose's) loads; a running one is told to read
it again at once.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from cli.admin import refuse
from cli.admin.system import without_user_info
from cli.embedded.nats_auth import (
    ROLES,
    NatsAuthError,
    NatsAuthFolder,
    channel_subject,
    reload_server,
)
from cli.runtime import read_runtime_pids
from hubbub.config import Settings


def manage_services(
    settings: Settings,
    action: str,
    *,
    name: str | None = None,
    channels: list[str] | None = None,
    out: TextIO = sys.stdout,
) -> int:
    folder = NatsAuthFolder.of_state_dir(settings.state_dir, settings.namespace)
    folder.ensure()
    try:
        if action == "create":
            assert name is not None
            service = folder.add_service(name, channels or [])
            subjects = ", ".join(channel_subject(c, settings.namespace) for c in service.channels)
            print(
                f"created NATS service user {service.user!r} for {', '.join(service.channels)}",
                file=out,
            )
            print(f"it may publish to: {subjects} (through JetStream or core NATS)", file=out)
            _say_reloaded(settings, out)
            print("connect with (keep the password secret):", file=out)
            # Where to connect, without NATS_URL's own credentials: it has its own.
            url = without_user_info(settings.nats_url) if settings.nats_url else None
            print(f"  NATS_URL={url or 'nats://<your NATS>'}", file=out)
            print(f"  NATS_USER={service.user}", file=out)
            print(f"  NATS_PASSWORD={service.password}", file=out)
            print(
                f"  and the inbox prefix {service.inbox_prefix!r}, e.g. nats-py: "
                f"nats.connect(url, user=…, password=…, inbox_prefix={service.inbox_prefix!r})",
                file=out,
            )
        elif action == "revoke":
            assert name is not None
            if not folder.revoke_service(name):
                return refuse(f"no service named {name!r}")
            print(f"revoked {name!r}", file=out)
            _say_reloaded(settings, out)
        else:
            services = folder.services()
            if not services:
                print("no services", file=out)
            for s in services:
                print(f"{s.name:<24} {s.user:<28} {s.created_at}  {' '.join(s.channels)}", file=out)
    except NatsAuthError as exc:
        return refuse(str(exc))
    return 0


def prepare_nats_auth(
    settings: Settings, role_dirs: Sequence[str] = (), out: TextIO = sys.stdout
) -> int:
    """Generate the role credentials (once) and write the server configs: the single
    server's, and compose's (single and the nodes of its `cluster` profile). A copy of
    a role's password goes to each ``ROLE=FOLDER`` of ``role_dirs``: in compose, the
    volume of that role's containers, which then hold no other credential."""
    copies: list[tuple[str, Path]] = []
    for item in role_dirs:
        role, _, folder_name = item.partition("=")
        if role not in ROLES or not folder_name:
            return refuse(f"--role-dir {item!r}: ROLE=FOLDER, ROLE one of {', '.join(ROLES)}")
        copies.append((role, Path(folder_name)))
    folder = NatsAuthFolder.of_state_dir(settings.state_dir, settings.namespace)
    print(f"NATS server config: {folder.ensure()}", file=out)
    print(f"NATS server config (compose): {folder.write_compose_single()}", file=out)
    print(f"NATS cluster node config (compose): {folder.write_compose_cluster()}", file=out)
    for role, role_dir in copies:
        print(f"{role}'s password: {folder.copy_password(role, role_dir)}", file=out)
    return 0


def _say_reloaded(settings: Settings, out: TextIO) -> None:
    pids = read_runtime_pids(settings.state_dir)
    # Every node of an embedded cluster: nats, nats-2, nats-3, ...
    nodes = [pid for name, pid in pids.items() if name == "nats" or name.startswith("nats-")]
    if [pid for pid in nodes if reload_server(pid)]:
        print("the running embedded NATS has read it (config reload)", file=out)
    else:
        print(
            "no embedded NATS runs on this state folder: the next `hubbub up` loads it "
            "(compose: `docker compose kill -s HUP nats`; in its cluster profile, every "
            "node: `docker compose kill -s HUP nats nats-2 nats-3`)",
            file=out,
        )
