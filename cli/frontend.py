"""Building the frontend (a static export) when ``hubbub up`` needs it.

Rebuilt only when missing or older than its sources; ``npm ci`` only when
``node_modules`` is missing or older than ``package-lock.json``.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
from pathlib import Path

from cli.embedded.process import die_with_parent, run_group

log = logging.getLogger("cli.frontend")

ROOT = Path(__file__).resolve().parent.parent / "frontend"
SOURCES = (
    "src",
    "public",
    "package.json",
    "package-lock.json",
    "next.config.ts",
    "tsconfig.json",
    "postcss.config.mjs",
)


def _newest(paths: list[Path]) -> float:
    newest = 0.0
    for path in paths:
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
        elif path.is_dir():
            for dirpath, _dirs, files in os.walk(path):
                for name in files:
                    newest = max(newest, (Path(dirpath) / name).stat().st_mtime)
    return newest


def needs_build(root: Path = ROOT) -> bool:
    built = root / "out" / "index.html"
    return not built.exists() or built.stat().st_mtime < _newest([root / s for s in SOURCES])


def ensure_built(root: Path = ROOT) -> Path | None:
    """The export's folder, built if needed; None when there is no frontend or no Node."""
    if not (root / "package.json").exists():
        return None
    if not needs_build(root):
        return root / "out"
    npm = shutil.which("npm")
    if npm is None:
        log.warning("Node.js/npm not found: serving the API without the frontend")
        return None
    env = {**os.environ, "NEXT_TELEMETRY_DISABLED": "1", "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"}
    # npm dies with `hubbub up`, as its other children do (npm ends the scripts it runs);
    # a stop while it runs ends npm's whole process group (run_group), the build with it.
    dies = die_with_parent(signal.SIGTERM)
    installed = root / "node_modules" / ".package-lock.json"
    if (
        not installed.exists()
        or installed.stat().st_mtime < (root / "package-lock.json").stat().st_mtime
    ):
        log.info("installing the frontend's packages (npm ci)")
        run_group(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=root, env=env, check=True, preexec_fn=dies
        )
    log.info("building the frontend (next build)")
    run_group([npm, "run", "build"], cwd=root, env=env, check=True, preexec_fn=dies)
    return root / "out"
