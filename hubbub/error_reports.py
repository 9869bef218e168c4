"""Errors to Sentry (``sentry-sdk``), from hubs and workers alike, when ``SENTRY_DSN`` is
set; without it nothing is loaded or sent.

What is reported is what is logged at ERROR or above (``log.exception`` of a bug: an
unhandled error in a hub, a handler that failed in a worker, a malformed reply...):
Sentry's logging integration turns each such record into one event, with the
traceback. Nothing else of Sentry's is switched on: no breadcrumbs (the access log would
make one per request), no performance tracing (OpenTelemetry does that), no framework
integrations patching aiohttp or SQLAlchemy, no local variables of the stack frames
(they hold passwords and tokens).

Each event is tagged, in ``before_send`` (``scrub``), with what says where it happened:

* ``request_id`` — the request being served (``hubbub.logs.request_id_var``);
* ``operation`` — the ``op`` of the log record (the operation, or the hub's route), or
  its ``method`` (a socket's RPC);
* ``user_id`` — the log record's ``user_id``, also as Sentry's user.

and scrubbed: a value under a key that names a secret (password, token, secret,
authorization, cookie, a key (``api_key``, ``session_key``), signature, credentials,
dsn...) becomes ``[Filtered]``, and within any text bearer tokens, JWTs, ``password=...``
pairs, the passwords of URLs and the row values a database error quotes (its
``DETAIL``: a duplicate key, a failing row; ``hubbub.logs.without_row_values``, which
the log formatters apply too) are cut out.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, cast

from hubbub.logs import request_id_var, without_row_values

if TYPE_CHECKING:
    from sentry_sdk.types import Event, Hint

    from hubbub.config import Settings

log = logging.getLogger(__name__)

FILTERED = "[Filtered]"
# Keys whose values are never sent, whatever they hold.
SECRET_KEY = re.compile(
    r"pass(word|wd|phrase)?|secret|token|authori[sz]ation|cookie|api[-_]?key|private|"
    r"signature|caller_sig|credential|creds|dsn|seed|nkey|csrf|(^|[-_])key$",
    re.IGNORECASE,
)
# Secrets inside text: a bearer token, a JWT, ``password=...`` pairs, a URL's password.
SECRET_TEXT = (
    (re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"), r"\1" + FILTERED),
    (re.compile(r"\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*"), FILTERED),
    (
        re.compile(
            r"(?i)\b((?:pass(?:word|wd)?|secret|token|api[-_]?key)[\"']?\s*[=:]\s*[\"']?)"
            r"[^\s\"',;&]+"
        ),
        r"\1" + FILTERED,
    ),
    (
        re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@/\s]+@", re.IGNORECASE),
        r"\1" + FILTERED + "@",
    ),
)
# Event fields that are structure, not data: their names never make them secret.
_STRUCTURE = frozenset(("exception", "values", "stacktrace", "frames", "tags", "contexts"))

_configured = False


def configure(settings: Settings, component: str) -> bool:
    """Report errors to ``settings.sentry_dsn``, if set; whether reporting is on. Once
    per process (hub and worker in one process, the tests, share the client)."""
    global _configured
    if not settings.sentry_dsn:
        return False
    if _configured:
        return True
    import sentry_sdk
    from sentry_sdk.integrations.dedupe import DedupeIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.env.value,
        server_name=component,
        before_send=scrub,
        default_integrations=False,
        auto_enabling_integrations=False,
        integrations=[
            LoggingIntegration(level=None, event_level=logging.ERROR),
            DedupeIntegration(),
        ],
        include_local_variables=False,
        max_breadcrumbs=0,
        traces_sample_rate=None,
    )
    sentry_sdk.get_global_scope().set_tag("component", component)
    _configured = True
    log.info("error reports to Sentry", extra={"component": component})
    return True


def close(timeout: float = 2.0) -> None:
    """Send what is queued and stop reporting (a process's exit; the tests)."""
    global _configured
    if not _configured:
        return
    import sentry_sdk

    sentry_sdk.get_client().close(timeout=timeout)
    _configured = False


def scrub(event: Event, hint: Hint | None = None) -> Event:
    """Sentry's ``before_send``: tag ``event`` with the request, the operation and the
    user, then remove every secret from it."""
    return cast("Event", _scrub(cast("dict[str, Any]", event)))


def _scrub(event: dict[str, Any]) -> dict[str, Any]:
    extra = event.get("extra")
    if not isinstance(extra, dict):
        extra = {}
    tags = event.get("tags")
    if not isinstance(tags, dict):
        tags = event["tags"] = {}
    request_id = request_id_var.get() or extra.get("request_id")
    if request_id:
        tags["request_id"] = str(request_id)
    operation = extra.get("op") or extra.get("operation") or extra.get("method")
    if operation:
        tags["operation"] = str(operation)
    user_id = extra.get("user_id")
    if user_id:
        tags["user_id"] = str(user_id)
        event["user"] = {"id": str(user_id)}
    else:
        event.pop("user", None)
    cleaned: dict[str, Any] = _clean(event)
    return cleaned


def _clean(value: Any, key: str = "") -> Any:
    if key and key not in _STRUCTURE and SECRET_KEY.search(key):
        return FILTERED if value not in (None, "", [], {}) else value
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {k: _clean(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        # Header lists: [["Authorization", "Bearer ..."], ...] — a pair named by its first.
        if len(value) == 2 and isinstance(value[0], str) and SECRET_KEY.search(value[0]):
            return [value[0], FILTERED]
        return [_clean(item) for item in value]
    return value


def scrub_text(text: str) -> str:
    for pattern, replacement in SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return without_row_values(text)
