"""The envelope every request carries from the hub (or a backend service) to a worker.

Wire form on ``svc.<domain>.<op>``: a JSON body

    {"params": {...}, "caller": {...} | null, "caller_sig": "<signature>"?,
     "deadline": <unix ms>, "request_id": "<id>", "idempotency_key": "<key>"?}

``caller_sig`` is the hub's signature of the caller and the deadline
(``hubbub/callers.py``): a worker refuses a caller other than ``null`` without a right
one (``forbidden``), so only a hub can say who asks.

``request_id`` follows the work into every log line; a worker does not start work whose
``deadline`` has passed; ``idempotency_key`` (mutations only) makes a retry apply once.
Only W3C trace context (``traceparent``) travels as a header. Every header costs both
sides a parse per message while the body is parsed anyway, so everything else is in the
body, and a worker reads it only there.

The reply's body is the result JSON itself when the header ``Hubbub-Error`` is absent;
otherwise the header holds the error code and the body the error object
(``{"code", "message", "status", "details"?}``). Keeping the success body bare lets the
hub hand it to the client without decoding and re-encoding it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

H_TRACEPARENT = "traceparent"
H_ERROR = "Hubbub-Error"


class CallerKind(StrEnum):
    USER = "user"
    SERVICE = "service"
    ANONYMOUS = "anonymous"


class Caller(BaseModel):
    """Who asks. Set by the hub from a verified token or API key and signed by it;
    workers believe it only with that signature."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: CallerKind = CallerKind.ANONYMOUS
    user_id: str | None = None
    role: str | None = None
    session_id: str | None = None
    service: str | None = Field(default=None, description="API key name for service callers")
    ip: str | None = None

    @property
    def is_user(self) -> bool:
        return self.kind is CallerKind.USER and self.user_id is not None


ANONYMOUS = Caller()


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    params: dict[str, Any] = Field(default_factory=dict)
    caller: Caller | None = None
    caller_sig: str | None = Field(default=None, description="the hub's signature")
    deadline: int | None = Field(default=None, description="unix epoch milliseconds")
    request_id: str | None = None
    idempotency_key: str | None = None
