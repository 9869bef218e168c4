"""What the ``hubbub`` command keeps in, and reads from, the state folder (``.hubbub/``).

* ``runtime.json``: the URLs of a running ``hubbub up`` and its children's current pids,
  so other commands (``hubbub migrate``, ``hubbub user create``, …) run against the same
  embedded servers, and ``hubbub service`` can tell its NATS to reload;
* ``secret_key``: the development secret, generated once, used when
  ``HUBBUB_SECRET_KEY`` is unset outside production.

The settings a command runs with are built here (``load_settings``, ``with_running_system``)
and handed to the hub or worker it starts: the kernel's ``Settings`` only reads the
environment, and a hub or worker gets what ``hubbub up`` made for it (its role's NATS
credentials among them) through its environment.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import time
from pathlib import Path
from typing import IO, Any

import orjson

from hubbub.config import ConfigError, Settings, normalize_database_url

RUNTIME_FILE = "runtime.json"


def load_settings(**overrides: Any) -> Settings:
    """The settings from the environment (and ``.env``), with a secret (``with_secret``)."""
    return with_secret(Settings(**overrides))


def with_secret(settings: Settings) -> Settings:
    """The settings with their secret set: the configured one, or the kept dev secret.

    Production refuses to start without a configured secret: a generated one would
    differ per process and silently log everyone out on each restart.
    """
    if settings.secret_key:
        return settings
    if settings.is_production:
        raise ConfigError(
            "HUBBUB_SECRET_KEY is not set. In production (HUBBUB_ENV=production) the "
            "signing secret must be configured: generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
        )
    return settings.model_copy(update={"secret_key": dev_secret(settings.state_dir)})


def with_running_system(settings: Settings, nats_role: str | None) -> Settings:
    """The settings with their unset service URLs filled from a `hubbub up` running on the
    same state folder; with its NATS, the credentials of ``nats_role`` too (``hub``,
    ``worker``; None: a command that does not connect to NATS gets none)."""
    runtime = read_runtime(settings.state_dir)
    update: dict[str, Any] = {
        field: runtime[var]
        for field, var in (
            ("database_url", "DATABASE_URL"),
            ("nats_url", "NATS_URL"),
            ("redis_url", "REDIS_URL"),
        )
        if getattr(settings, field) is None and var in runtime
    }
    if "database_url" in update:
        update["database_url"] = normalize_database_url(update["database_url"])
    if "nats_url" in update and nats_role is not None and not settings.has_nats_credentials:
        # Its embedded NATS refuses anonymous clients: the command connects as its role.
        # (Imported here: a hub or worker of compose never needs the embedded servers' code.)
        from cli.embedded.nats_auth import embedded_role_credentials

        update.update(embedded_role_credentials(settings.state_dir, nats_role))
    return settings.model_copy(update=update) if update else settings


def write_runtime(
    state_dir: Path, urls: dict[str, str], pids: dict[str, int] | None = None
) -> None:
    """Record the URLs of a running `hubbub up` and the current process id of each of its
    children (``pids``: hub-1, worker-1, postgres, …). Replaced atomically: a reader never
    sees half a file."""
    data = orjson.dumps({**urls, "pids": pids or {}})
    write_private(state_dir / RUNTIME_FILE, data.decode())


def make_state_dir(state_dir: Path) -> None:
    """Create the state folder so that only its owner can enter it (0700): it holds the
    embedded servers' data and the secrets. One this user already has, made wider by an
    older version or a umask, is narrowed; one of another owner is left as it is. (Run as
    root, the embedded PostgreSQL then adds traverse-only access for its system user.)"""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = state_dir.stat()
    if info.st_uid == os.getuid() and info.st_mode & 0o077:
        state_dir.chmod(0o700)


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically (a reader never sees half a file) with a file only its
    owner can read (0600): what the state folder's secrets and URLs are written as."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def kept_password(path: Path) -> tuple[str, bool]:
    """The password kept in ``path``, and whether it was made just now: generated on
    first use into a file only its owner reads (0600), then reused on every start."""
    if path.exists() and (kept := path.read_text().strip()):
        return kept, False
    write_private(path, secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip(), True


def clear_runtime(state_dir: Path) -> None:
    (state_dir / RUNTIME_FILE).unlink(missing_ok=True)


def _running_runtime(state_dir: Path) -> dict[str, Any]:
    """``runtime.json`` while a `hubbub up` holds this folder, else {}: a file left by a
    killed run names dead URLs, and pids that may be other processes' by now."""
    if not _is_held(state_dir):
        return {}
    try:
        data = orjson.loads((state_dir / RUNTIME_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


LOCK_FILE = "up.lock"


def _is_held(state_dir: Path) -> bool:
    """Whether a `hubbub up` holds ``state_dir`` (``hold_state_dir``) now."""
    try:
        fd = os.open(state_dir / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False  # no `hubbub up` has run here
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False  # a file system without locks: no `hubbub up` could hold it either
    finally:
        os.close(fd)  # lets go of the shared lock, if it was taken
    return False


def hold_state_dir(state_dir: Path, patience_s: float = 0.5) -> IO[bytes] | None:
    """Hold ``state_dir`` for this `hubbub up`: an exclusive lock on its ``up.lock``, kept
    while the returned file stays open; None when another process holds it. The system
    lets go of it when the process ends, however it ends, so a killed run leaves nothing
    that blocks the next — and it holds across containers that share the folder, where
    a pid in a file would name another namespace's process.

    Another command that looks whether an `up` runs (``_is_held``) holds the lock shared
    for a moment: that is waited out, for up to ``patience_s``."""
    make_state_dir(state_dir)
    lock = open(state_dir / LOCK_FILE, "ab")  # noqa: SIM115  # held open on purpose
    deadline = time.monotonic() + patience_s
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock
        except BlockingIOError:
            if time.monotonic() >= deadline:
                lock.close()
                return None
            time.sleep(0.01)


def read_runtime(state_dir: Path) -> dict[str, str]:
    """The URLs of the `hubbub up` running on this state folder, or {} if none runs."""
    return {k: v for k, v in _running_runtime(state_dir).items() if isinstance(v, str)}


def read_runtime_pids(state_dir: Path) -> dict[str, int]:
    """The process ids of the running `hubbub up`'s children that are running now (a
    child waiting to be restarted has none), or {} if no `hubbub up` runs."""
    pids = _running_runtime(state_dir).get("pids")
    if not isinstance(pids, dict):
        return {}
    return {str(k): v for k, v in pids.items() if isinstance(v, int)}


def dev_secret(state_dir: Path) -> str:
    """The development secret, generated once and kept (mode 0600) in the state folder."""
    path = state_dir / "secret_key"
    if path.exists():
        value = path.read_text().strip()
        if len(value) >= 32:
            return value
    make_state_dir(state_dir)
    tmp = state_dir / f".secret_key.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(48) + "\n")
    try:
        os.link(tmp, path)  # fails if another process won the race: then we read theirs
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    value = path.read_text().strip()
    if len(value) < 32:
        raise ConfigError(f"{path} holds a secret shorter than 32 characters: delete it")
    return value
