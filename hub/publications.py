"""What a publication stores: its data as JSON, one encoding for the publish API and the
socket's ``publish`` command."""

from __future__ import annotations

import orjson

from hubbub.contracts.errors import ValidationFailed


def publication_json(value: object, loc: list[str]) -> bytes:
    """``value`` as the JSON a publication stores; ``validation_failed`` (naming ``loc``)
    when it cannot be written: nested deeper than orjson writes (254 levels)."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is one
        raise ValidationFailed(
            "data: nested too deeply",
            errors=[{"loc": loc, "msg": "nested too deeply to store", "type": "too_deep"}],
        ) from None
