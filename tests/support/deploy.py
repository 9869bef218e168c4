"""The shipped deploy/ files as the tests use them: the nginx config rewritten to run
as a child process of a test, Debian's tools found (or a clear failure), and the metric
names that alerts and dashboards read."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
NGINX_CONF = DEPLOY / "nginx" / "nginx.conf"
PROMETHEUS_YML = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS_YML = DEPLOY / "prometheus" / "alerts.yml"
ALERTS_TEST_YML = DEPLOY / "prometheus" / "alerts.test.yml"
ALERTMANAGER_YML = DEPLOY / "alertmanager" / "alertmanager.yml"
GRAFANA = DEPLOY / "grafana"
DASHBOARDS = GRAFANA / "dashboards"

# Where each tool comes from: scripts/ensure-debian-packages installs them for scripts/test.
DEBIAN_TOOLS = {
    "nginx": "nginx libnginx-mod-http-brotli-filter",
    "promtool": "prometheus",
    "amtool": "prometheus-alertmanager",
}


def debian_tool(name: str) -> str:
    """The path of a tool from a Debian package; a missing one fails the test (it is
    never a skip: scripts/test installs it)."""
    for folder in ("/usr/sbin", "/usr/bin"):
        if (path := Path(folder) / name).is_file():
            return str(path)
    found = shutil.which(name)
    assert found is not None, (
        f"{name} is missing: run scripts/ensure-debian-packages (as root), or "
        f"apt-get install {DEBIAN_TOOLS[name]}"
    )
    return found


def _replace_once(text: str, pattern: str, replacement: str) -> str:
    """``pattern`` replaced where it occurs exactly once: a config that changed shape
    fails here, instead of running half-rewritten."""
    new, count = re.subn(pattern, lambda _: replacement, text, flags=re.MULTILINE)
    assert count == 1, f"deploy/nginx/nginx.conf: expected one match of {pattern!r}, got {count}"
    return new


def local_nginx_config(folder: Path, *, port: int, hub_ports: list[int]) -> Path:
    """The shipped nginx.conf for a test: listening on 127.0.0.1:``port``, the hubs on
    127.0.0.1 (each with the shipped server parameters), pid, logs and temp files in
    ``folder``, no ``user`` (it runs as whoever runs the test). Everything else as
    shipped. Returns the written file."""
    text = NGINX_CONF.read_text()
    server = re.search(r"^\s*server hub:8080( [^;]*);$", text, re.MULTILINE)
    assert server is not None, "deploy/nginx/nginx.conf: no `server hub:8080 …;` line"
    servers = "\n".join(f"        server 127.0.0.1:{p}{server.group(1)};" for p in hub_ports)
    text = _replace_once(text, r"^\s*server hub:8080 [^;]*;$", servers)
    text = _replace_once(text, r"^user \S+;$", "")
    text = _replace_once(text, r"^worker_processes \S+;$", "worker_processes 1;")
    text = _replace_once(text, r"^pid \S+;$", f"pid {folder}/nginx.pid;")
    text = _replace_once(text, r"^error_log \S+", f"error_log {folder}/error.log")
    text = _replace_once(text, r"^(\s*)access_log \S+;$", f"    access_log {folder}/access.log;")
    text = _replace_once(text, r"^(\s*)listen 80;$", f"        listen 127.0.0.1:{port};")
    temp = "".join(
        f"    {kind}_temp_path {folder}/{kind}_temp;\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = _replace_once(text, r"^http \{$", "http {\n" + temp)
    path = folder / "nginx.conf"
    path.write_text(text)
    return path


def nginx_command(config: Path, *args: str) -> list[str]:
    """``nginx`` on ``config`` with its prefix and startup error log in the config's
    folder (nothing under /var or /run)."""
    folder = config.parent
    return [
        debian_tool("nginx"),
        "-p",
        str(folder),
        "-e",
        str(folder / "error.log"),
        "-c",
        str(config),
        *args,
    ]


# --- PromQL: which metric names an expression reads ----------------------------------

_KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "inf",
    "nan",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions
    (followed by ``(``), keywords, label names (in ``{…}``, ``by (…)`` and the like),
    strings, durations or Grafana variables."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\boffset\s+-?[0-9a-z]+", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)
    names = re.findall(r"(?<![\w:.])([a-zA-Z_:][\w:]*)(?!\s*\()(?![\w:])", text)
    return {name for name in names if name.lower() not in _KEYWORDS}


def alert_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for group in yaml.safe_load(ALERTS_YML.read_text())["groups"]:
        rules.extend(rule for rule in group["rules"] if "alert" in rule)
    return rules


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_panels(path: Path) -> list[dict[str, Any]]:
    return list(_panels(orjson.loads(path.read_bytes())["panels"]))


def dashboard_expressions() -> dict[str, str]:
    """``"<dashboard> / <panel title>": expr`` for every query of every dashboard."""
    found: dict[str, str] = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in dashboard_panels(path):
            for n, target in enumerate(panel.get("targets", [])):
                found[f"{path.name} / {panel['title']} #{n}"] = target["expr"]
    return found


def every_expression() -> dict[str, str]:
    """Every PromQL expression of the alerts and the dashboards, by where it is."""
    exprs = {f"alerts.yml / {rule['alert']}": str(rule["expr"]) for rule in alert_rules()}
    return exprs | dashboard_expressions()


# Series Prometheus itself writes for every target (not Hubbub's to export).
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def exported_names(exposition: str) -> set[str]:
    """Every series name a Prometheus text exposition offers: its samples, and what each
    ``# TYPE`` line promises (a counter's ``_total``, a histogram's ``_bucket``/``_sum``/
    ``_count``) even before its first sample."""
    names: set[str] = set()
    suffixes = {
        "counter": ("", "_total"),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("", "_sum", "_count"),
        "untyped": ("",),
    }
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            names.update(name + suffix for suffix in suffixes.get(kind, ("",)))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names
