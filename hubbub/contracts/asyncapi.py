"""The AsyncAPI 3.0 document of the WebSocket protocol and the channels' events,
generated from the contracts — never written by hand.

* one channel, ``socket`` (``/ws``), carries the protocol: every command of
  ``hubbub/contracts/frames.py`` with its reply (a result or an error frame), every push,
  and one ``rpc`` message per public operation of the catalog, its params and result
  schemas being the operation's own (the OpenAPI document's ``components`` hold the same);
* one channel per channel kind (``workspace:{name}``, ``user:{name}``, …) with the events
  of ``hubbub/contracts/event_types.py`` that go there — the envelope with ``type`` fixed
  and ``data`` the type's model — and, for kinds backend services publish on, a
  free-form publication; for the kind clients publish on (``chat:``), the chat message
  the hub makes of a ``publish`` command (``CHAT_MESSAGE``). On the socket they arrive as
  the ``data`` of ``pub`` pushes;
* ``send`` operations for the commands (with their replies), ``receive`` operations for
  the pushes and for each channel kind.

The hub serves it at ``/api/v1/asyncapi.json``, ``hubbub asyncapi`` prints it, and the
frontend's push and event types are generated from it (``frontend/scripts/asyncapi.mjs``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from hubbub.contracts.channels import (
    CHANNEL_PATTERN,
    DEFAULT_POLICIES,
    ChannelKind,
    SlowConsumerPolicy,
    SubscribeRule,
)
from hubbub.contracts.event_types import EVENT_TYPES, on_channel
from hubbub.contracts.events import Event, EventType
from hubbub.contracts.frames import COMMANDS, PUSHES, RESULTS, ErrorFrame
from hubbub.contracts.operations import Access, Catalog, Operation
from hubbub.contracts.protocol import SUBPROTOCOL, Op

ASYNCAPI_PATH = "/api/v1/asyncapi.json"
SCHEMA = "#/components/schemas/{model}"
SOCKET = "socket"
# The rule hub/calls.py applies to an idempotency key: 1-200 visible ASCII characters.
IDEMPOTENCY_KEY = {"type": "string", "pattern": "^[\\x21-\\x7e]{1,200}$"}

# What a member's `publish` command on a chat channel becomes: the hub wraps the command's
# data with who sent it and when (hub/ws/channels.py), and stores and delivers that.
CHAT_MESSAGE = {
    "type": "object",
    "description": "A member's `publish`, as the hub stores and delivers it",
    "properties": {
        "type": {"const": "message", "type": "string"},
        "from": {"type": "string", "description": "The publisher's user id"},
        "at": {
            "type": "number",
            "description": "When the hub took it: Unix time in seconds, to the millisecond",
        },
        "data": {
            "type": "object",
            "description": "The `data` of the `publish` command (its JSON re-encoded: "
            "`1e5` is `100000.0`)",
        },
    },
    "required": ["type", "from", "at", "data"],
    "additionalProperties": False,
}

_WHO = {
    SubscribeRule.WORKSPACE_MEMBER: "members of the workspace",
    SubscribeRule.SELF: "that user only",
    SubscribeRule.ANY_USER: "any signed-in user",
}
_SLOW = {
    SlowConsumerPolicy.DISCONNECT: "a slow socket is closed with 4009 and recovers with `since`",
    SlowConsumerPolicy.DROP_OLDEST: "a slow socket loses the oldest and gets a `gap` push",
    SlowConsumerPolicy.CONFLATE: "a slow socket gets only the newest publication per `data.key`",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": SCHEMA.format(model=name)}


def _message_ref(key: str) -> dict[str, str]:
    return {"$ref": f"#/components/messages/{key}"}


def _in_channel(channel: str, key: str) -> dict[str, str]:
    return {"$ref": f"#/channels/{channel}/messages/{key}"}


def _key(text: str) -> str:
    """A component key (``^[a-zA-Z0-9._-]+$``) for a method or event name."""
    return text.replace(".", "_")


class _Schemas:
    """Every model's JSON schema, with its nested models as shared components."""

    def __init__(self, models: list[tuple[type[BaseModel], JsonSchemaMode]]) -> None:
        unique = list(dict.fromkeys(models))
        refs, defs = models_json_schema(unique, ref_template=SCHEMA, by_alias=True)
        self.refs = refs
        self.components: dict[str, Any] = dict(defs.get("$defs", {}))

    def of(self, model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return dict(self.refs[(model, mode)])


def _public(catalog: Catalog) -> list[Operation]:
    """What a client may call over RPC: neither internal nor for services only."""
    return [op for op in catalog if op.access not in (Access.INTERNAL, Access.SERVICE)]


def _event_schema(event: EventType, data: dict[str, Any]) -> dict[str, Any]:
    """The envelope (``Event``) with ``type`` fixed and ``data`` the type's model."""
    envelope = Event.model_json_schema()
    properties = dict(envelope["properties"])
    properties["type"] = {"const": event.name, "type": "string"}
    properties["channel"] = {
        "type": "string",
        "pattern": "^(" + "|".join(k.value for k in event.channels) + r"):[A-Za-z0-9_-]{1,64}$",
    }
    properties["data"] = data
    return {
        "type": "object",
        "title": f"{event.name} event",
        "description": event.summary,
        "properties": properties,
        "required": ["id", "type", "channel", "at", "data"],
        "additionalProperties": False,
    }


def _reply(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"id": {"type": "integer", "minimum": 0}, "result": result},
        "required": ["id", "result"],
        "additionalProperties": False,
    }


def _rpc_command(op: Operation, params: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "id": {"type": "integer", "minimum": 0, "maximum": 2**53},
        "op": {"const": Op.RPC.value, "type": "string"},
        "method": {"const": op.name, "type": "string"},
        "params": params,
    }
    if op.mutating:
        properties["idempotency_key"] = {
            **IDEMPOTENCY_KEY,
            "description": "Applies the call once however often it is sent",
        }
    return {
        "type": "object",
        "properties": properties,
        "required": ["id", "op", "method"],
        "additionalProperties": False,
    }


def _channel_description(kind: ChannelKind) -> str:
    policy = DEFAULT_POLICIES[kind]
    parts = [
        f"`{kind.value}:<name>`. Who may subscribe: {_WHO[policy.subscribe]}.",
        "Clients publish here (the `publish` command)."
        if policy.client_publish
        else "Clients do not publish here.",
        f"History by default: {policy.history_max_msgs} publications per channel, "
        f"{int(policy.history_max_age_s)} s.",
        f"Slow consumers: {_SLOW[policy.slow_consumer]}.",
    ]
    if policy.presence:
        parts.append("Presence is tracked (`presence` pushes).")
    parts.append("Publications arrive on the socket as the `data` of `pub` pushes.")
    return " ".join(parts)


def build_document(catalog: Catalog, *, version: str = "1") -> dict[str, Any]:
    ops = _public(catalog)
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    models += [(model, "validation") for model in COMMANDS.values()]
    models += [(model, "serialization") for model in RESULTS.values()]
    models += [(model, "serialization") for model in PUSHES.values()]
    models.append((ErrorFrame, "serialization"))
    for op in ops:
        models.append((op.params, "validation"))
        models.append((op.result, "serialization"))
    models += [(event.data, "serialization") for event in EVENT_TYPES.values()]
    schemas = _Schemas(models)

    messages: dict[str, Any] = {}
    socket_messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}

    def message(key: str, name: str, title: str, payload: dict[str, Any], **more: Any) -> None:
        messages[key] = {"name": name, "title": title, "payload": payload, **more}
        socket_messages[key] = _message_ref(key)

    message("error", "error", "A failed command", schemas.of(ErrorFrame, "serialization"))
    for op_name, model in COMMANDS.items():
        if op_name is Op.RPC:
            continue  # one message per method, below
        message(
            f"command_{op_name.value}",
            op_name.value,
            f"`{op_name.value}` command",
            schemas.of(model, "validation"),
            summary=(model.__doc__ or "").strip(),
        )
        operation: dict[str, Any] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{SOCKET}"},
            "summary": (model.__doc__ or "").strip() or f"`{op_name.value}`",
            "messages": [_in_channel(SOCKET, f"command_{op_name.value}")],
        }
        if op_name in RESULTS:
            message(
                f"result_{op_name.value}",
                f"{op_name.value}.result",
                f"Reply to `{op_name.value}`",
                _reply(schemas.of(RESULTS[op_name], "serialization")),
            )
            operation["reply"] = {
                "channel": {"$ref": f"#/channels/{SOCKET}"},
                "messages": [
                    _in_channel(SOCKET, f"result_{op_name.value}"),
                    _in_channel(SOCKET, "error"),
                ],
            }
        operations[f"send_{op_name.value}"] = operation

    for op in ops:
        key = _key(op.name)
        route = f" (`{op.http.method} /api/v1{op.http.path}`)" if op.http else ""
        text = op.description or op.summary
        message(
            f"rpc_{key}",
            op.name,
            f"`rpc` {op.name}",
            _rpc_command(op, schemas.of(op.params, "validation")),
            summary=op.summary or op.name,
            description=f"{text}{route}. Access: {op.access.value}.".lstrip(),
        )
        message(
            f"rpc_{key}_result",
            f"{op.name}.result",
            f"Reply to `rpc` {op.name}",
            _reply(schemas.of(op.result, "serialization")),
        )
        operations[f"rpc_{key}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{SOCKET}"},
            "summary": op.summary or op.name,
            "messages": [_in_channel(SOCKET, f"rpc_{key}")],
            "reply": {
                "channel": {"$ref": f"#/channels/{SOCKET}"},
                "messages": [
                    _in_channel(SOCKET, f"rpc_{key}_result"),
                    _in_channel(SOCKET, "error"),
                ],
            },
        }

    for push, model in PUSHES.items():
        message(
            f"push_{push.value}",
            push.value,
            f"`{push.value}` push",
            schemas.of(model, "serialization"),
            summary=(model.__doc__ or "").strip(),
        )
        operations[f"receive_{push.value}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{SOCKET}"},
            "summary": (model.__doc__ or "").strip() or f"`{push.value}`",
            "messages": [_in_channel(SOCKET, f"push_{push.value}")],
        }

    channels: dict[str, Any] = {
        SOCKET: {
            "address": "/ws",
            "title": "The WebSocket",
            "description": f"One socket per client, subprotocol `{SUBPROTOCOL}`. Commands "
            "carry an integer `id` their reply echoes; pushes carry none. A text frame is "
            "one JSON object or an array of them (a batch). See docs/protocol.md.",
            "messages": socket_messages,
            "bindings": {"ws": UPGRADE_CONNECT},
        }
    }
    free_form = {"type": "object", "description": "Any JSON object the service published"}
    for kind in ChannelKind:
        kind_messages: dict[str, Any] = {}
        for event in on_channel(kind):
            key = f"event_{_key(event.name)}"
            if key not in messages:
                messages[key] = {
                    "name": event.name,
                    "title": f"`{event.name}`",
                    "summary": event.summary,
                    "payload": _event_schema(event, schemas.of(event.data, "serialization")),
                }
            kind_messages[key] = _message_ref(key)
        policy = DEFAULT_POLICIES[kind]
        if policy.client_publish:
            key = "chat_message"
            messages.setdefault(
                key,
                {
                    "name": "chat_message",
                    "title": "A chat message",
                    "summary": "What a member published (the `publish` command), with who "
                    "sent it and when",
                    "payload": CHAT_MESSAGE,
                },
            )
            kind_messages[key] = _message_ref(key)
        if policy.subscribe is SubscribeRule.ANY_USER:
            key = "publication"
            messages.setdefault(
                key,
                {
                    "name": "publication",
                    "title": "A publication",
                    "summary": "What a backend service published: any JSON object",
                    "payload": free_form,
                },
            )
            kind_messages[key] = _message_ref(key)
        channels[kind.value] = {
            "address": f"{kind.value}:{{name}}",
            "title": f"`{kind.value}:` channels",
            "description": _channel_description(kind),
            "parameters": {
                "name": {
                    "description": "1-64 characters of A-Z a-z 0-9 _ - "
                    "(a workspace, chat or user channel is named by the id, lower-case)"
                }
            },
            "messages": kind_messages,
        }
        operations[f"receive_{kind.value}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{kind.value}"},
            "summary": f"What `{kind.value}:` channels carry (after `subscribe`)",
            "messages": [_in_channel(kind.value, key) for key in kind_messages],
        }

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Hubbub realtime API",
            "version": version,
            "description": "The WebSocket protocol (commands, replies, pushes; every REST "
            "operation is an `rpc` method with the same params and result) and what each "
            f"channel kind carries. Channel names match `{CHANNEL_PATTERN}`. REST: "
            "/api/v1/openapi.json.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "hub": {
                "host": "localhost:8080",
                "protocol": "ws",
                "pathname": "/ws",
                "description": "A hub; behind TLS it is `wss`. The socket's first frame is "
                "`connect` with an access token (from /api/v1/auth/login) — or the upgrade "
                "request carries it (`Authorization: Bearer`, and `subscribe` channels), "
                "and the first frame the hub sends is the `connected` push.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "messages": dict(sorted(messages.items())),
        },
    }


# The upgrade request's optional connect (docs/protocol.md, "Connecting in the upgrade
# request"): the WebSockets binding of the socket channel.
UPGRADE_CONNECT: dict[str, Any] = {
    "method": "GET",
    "headers": {
        "type": "object",
        "properties": {
            "Authorization": {
                "type": "string",
                "description": "`Bearer <access JWT>`: the connect, made in the upgrade "
                "(the hub answers with a `connected` push; a refusal is an HTTP problem)",
            },
            "Sec-WebSocket-Protocol": {"type": "string", "const": SUBPROTOCOL},
        },
        "required": ["Sec-WebSocket-Protocol"],
    },
    "query": {
        "type": "object",
        "properties": {
            "subscribe": {
                "type": "string",
                "description": "A channel to be subscribed to from the start (repeatable; "
                "needs `Authorization`): a `subscribed` push each, after `connected`",
            }
        },
    },
    "bindingVersion": "0.1.0",
}


__all__ = ["ASYNCAPI_PATH", "build_document"]
