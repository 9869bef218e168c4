"""Storing a publication, one path for the publish API and the socket's ``publish``
command: its data encoded as JSON, then published to its channel's stream — if it fits
in one NATS message with its headers (``too_large`` otherwise)."""

from __future__ import annotations

import nats.errors
import orjson
from nats.aio.client import Client as NATS
from nats.js.api import PubAck

from hubbub.contracts.errors import TooLarge, Unavailable, ValidationFailed
from hubbub.natsconn import message_size

STORE_TIMEOUT_S = 5.0  # for JetStream's acknowledgement


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


class NotStored(Unavailable):
    """``unavailable``, and known not stored: JetStream refused it, or it never left."""


async def store(
    nc: NATS, subject: str, payload: bytes, headers: dict[str, str] | None = None
) -> PubAck:
    """Publish ``payload`` to the stream of ``subject`` and return its acknowledgement;
    ``unavailable`` when JetStream does not acknowledge it: ``NotStored`` when it
    answered no or the message was never sent, plain ``Unavailable`` when no answer came
    in time (it may have stored it all the same).

    ``too_large`` (nothing sent) when the message, headers and all, is over the NATS
    server's ``max_payload``: the stored JSON can be larger than what was sent (``1e5``
    is written ``100000.0``), and the headers count too — a message over the limit makes
    the server close the connection (``hubbub/natsconn.py``), not just refuse it."""
    size = message_size(payload, headers)
    if size > nc.max_payload:
        raise _too_large(size, nc.max_payload)
    try:
        return await nc.jetstream().publish(
            subject, payload, headers=headers, timeout=STORE_TIMEOUT_S
        )
    except nats.errors.MaxPayloadError:  # a server with a smaller limit, since reconnected
        raise _too_large(size, nc.max_payload) from None
    except Exception as exc:
        message = f"the channel history did not accept it: {type(exc).__name__}"
        if isinstance(exc, TimeoutError | nats.errors.TimeoutError):
            raise Unavailable(message) from None
        raise NotStored(message) from None


def _too_large(size: int, limit: int) -> TooLarge:
    return TooLarge(
        f"the publication is {size} bytes as stored (its JSON and headers), over the "
        f"{limit} bytes a message may have",
        limit=limit,
    )
