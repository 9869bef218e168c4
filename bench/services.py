"""Services for benchmarks: the env URLs when set, otherwise embedded ones on free ports."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import migrations
from cli.embedded import EmbeddedNats, EmbeddedPostgres, EmbeddedRedis


@contextmanager
def services(nats_config: Path | None = None) -> Iterator[dict[str, str]]:
    """``nats_config``: a config file for the embedded NATS (its users and permissions)."""
    base = Path(tempfile.mkdtemp(prefix="hubbub-bench-"))
    started: list[EmbeddedPostgres | EmbeddedNats | EmbeddedRedis] = []
    try:
        urls = {}
        for var, server in (
            ("DATABASE_URL", EmbeddedPostgres(base / "postgres", durable=False)),
            ("NATS_URL", EmbeddedNats(base / "nats", config=nats_config)),
            ("REDIS_URL", EmbeddedRedis(base / "redis")),
        ):
            given = os.environ.get(var)
            if given:
                urls[var] = given
            else:
                started.append(server)
                urls[var] = server.start()
        migrations.upgrade_sync(urls["DATABASE_URL"])
        yield urls
    finally:
        for server in reversed(started):
            server.stop()
