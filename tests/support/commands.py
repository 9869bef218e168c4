"""What the union of every WebSocket command answers, for tests of the parser's fast paths."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from hub.calls import invalid
from hub.ws import commands as cmd


def union_error(raw: dict[str, Any]) -> dict[str, Any]:
    """The ``validation_failed`` error the command union gives ``raw``, as a dict."""
    with pytest.raises(ValidationError) as caught:
        cmd._adapter.validate_python(raw)
    return invalid(caught.value).to_dict()
