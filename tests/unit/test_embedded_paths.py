"""As root, the embedded PostgreSQL runs as a system user, which must reach the wheel's
binaries even when the clone sits under a private folder (/root, a `mktemp -d`)."""

from __future__ import annotations

import stat
from pathlib import Path

from cli.embedded.servers import _open_path_to


def test_every_folder_above_becomes_traversable_but_not_listable(tmp_path: Path) -> None:
    private = tmp_path / "private"
    target = private / "clone" / ".venv" / "pginstall"
    target.mkdir(parents=True)
    private.chmod(0o700)
    (private / "clone").chmod(0o700)
    _open_path_to(target)
    for folder in (private, private / "clone"):
        mode = folder.stat().st_mode
        assert mode & stat.S_IXOTH, folder
        assert not mode & stat.S_IROTH, folder  # traverse, never list
    assert (private / "clone" / ".venv").stat().st_mode & stat.S_IXOTH
