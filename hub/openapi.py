"""The OpenAPI 3.1 document, generated from the operation catalog — never written by hand.

Every catalog operation with an ``http`` route becomes an OpenAPI operation:

* ``operationId`` is the RPC method (``resources.update``), so the REST and RPC names of
  one operation are the same word;
* path parameters, and for GET/DELETE the query parameters, come from the params model's
  fields; for POST/PATCH the request body is the params model minus the path fields
  (and minus the ``If-Match`` field, which travels as the header);
* headers where they apply: ``If-Match`` (operations with ``Http.if_match``),
  ``If-None-Match`` and a ``304`` (GETs with an ETag), ``Idempotency-Key`` (mutating
  operations), and ``ETag`` on the responses of operations with ``Http.etag``;
* responses: the success status with the result schema, and one problem-details response
  (RFC 9457, ``application/problem+json``) per status the operation can fail with, naming
  the error codes — those every operation may answer, those its access and route imply,
  and its own (``Operation.errors``);
* ``bearer`` (a JWT) security for signed-in operations; optional for public ones.

Routes outside the catalog are documented with ``DocumentedRoute``s: ``/health`` and
``/ready`` here, and whatever else the app adds with ``document_route(app, ...)`` (e.g. a
publish endpoint that takes an API key) before the document is first served.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from hubbub.contracts.errors import STATUS_OF, TITLE_OF, ErrorCode
from hubbub.contracts.operations import Access, Catalog, Operation

API_PREFIX = "/api/v1"
REF = "#/components/schemas/{model}"
PROBLEM = "application/problem+json"

# What any operation may answer, whatever it does — ``too_large`` too: a body over the
# hub's limit, and any answer larger than a worker can send (NATS's max_payload).
ALWAYS = (
    ErrorCode.BAD_REQUEST,
    ErrorCode.VALIDATION_FAILED,
    ErrorCode.INTERNAL,
    ErrorCode.BAD_GATEWAY,
    ErrorCode.UNAVAILABLE,
    ErrorCode.TIMEOUT,
    ErrorCode.TOO_LARGE,
)


@dataclass(frozen=True)
class DocumentedRoute:
    """A route outside the catalog, documented by hand: ``operation`` is an OpenAPI
    Operation Object (its ``responses`` may ``$ref`` ``#/components/schemas/Problem``);
    ``schemas`` are components it refers to."""

    method: str
    path: str  # the full path, e.g. /api/v1/health
    operation: dict[str, Any]
    schemas: dict[str, Any] = field(default_factory=dict)


DOCUMENTED_ROUTES = web.AppKey("openapi_routes", list[DocumentedRoute])


def document_route(app: web.Application, route: DocumentedRoute) -> None:
    """Add a non-catalog route to the app's OpenAPI document."""
    app.setdefault(DOCUMENTED_ROUTES, []).append(route)


def errors_of(op: Operation) -> list[ErrorCode]:
    """Every error code ``op`` can answer with over REST."""
    codes: list[ErrorCode] = list(ALWAYS)
    if op.access in (Access.USER, Access.ADMIN, Access.SERVICE):
        codes.append(ErrorCode.UNAUTHORIZED)
    if op.access is Access.ADMIN:
        codes.append(ErrorCode.FORBIDDEN)
    if op.http is not None and op.http.if_match:
        codes.append(ErrorCode.PRECONDITION_FAILED)
    if op.mutating:
        codes.append(ErrorCode.UNPROCESSABLE)
    codes.extend(op.errors)
    return list(dict.fromkeys(codes))


def _problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "title": "Problem",
        "description": "RFC 9457 problem details; `code` is the stable machine word.",
        "required": ["type", "title", "status", "code"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "code": {"type": "string", "enum": [c.value for c in ErrorCode]},
            "instance": {"type": "string"},
            "request_id": {"type": "string"},
            "details": {"type": "object"},
        },
    }


def _tighten(schema: Any) -> None:
    """Say what pydantic enforces where its JSON schema is looser:

    * ``Annotated[X | SkipJsonSchema[None], NotNull] = None`` shows as type X with
      ``default: null`` — a default the type refuses only misleads clients and fuzzers;
    * a dict with constrained keys shows as ``patternProperties`` alone, which lets any
      other key through; pydantic refuses keys that do not match.
    """
    if isinstance(schema, dict):
        if schema.get("default", 0) is None and "type" in schema and schema["type"] != "null":
            del schema["default"]
        if "patternProperties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            _tighten(value)
    elif isinstance(schema, list):
        for value in schema:
            _tighten(value)


class _Builder:
    def __init__(self, catalog: Catalog) -> None:
        self.ops = [
            op
            for op in catalog
            if op.http is not None and op.access not in (Access.INTERNAL, Access.SERVICE)
        ]
        models: list[tuple[type[BaseModel], Any]] = []
        for op in self.ops:
            models.append((op.params, "validation"))
            if isinstance(op.result, type) and issubclass(op.result, BaseModel):
                models.append((op.result, "serialization"))
        refs, defs = models_json_schema(list(dict.fromkeys(models)), ref_template=REF)
        self.refs = refs
        self.schemas: dict[str, Any] = dict(defs.get("$defs", {}))
        self.schemas["Problem"] = _problem_schema()

    def _component(self, ref: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        name = ref["$ref"].rsplit("/", 1)[1]
        return name, self.schemas[name]

    def operation(self, op: Operation) -> dict[str, Any]:
        assert op.http is not None
        http = op.http
        params_ref = self.refs[(op.params, "validation")]
        params_name, params_schema = self._component(params_ref)
        properties: dict[str, Any] = params_schema.get("properties", {})
        required = set(params_schema.get("required", []))
        parameters: list[dict[str, Any]] = []
        for name in http.path_params:
            parameters.append(
                {"name": name, "in": "path", "required": True, "schema": properties[name]}
            )
        hidden = set(http.path_params) | ({http.if_match} if http.if_match else set())
        document: dict[str, Any] = {
            "operationId": op.name,
            "summary": op.summary or op.name,
            "tags": list(op.tags) or [op.domain],
        }
        if op.description:
            document["description"] = op.description
        if http.has_body:
            body_schema = params_ref
            if hidden & set(properties):
                body_schema = copy.deepcopy(params_schema)
                for name in hidden:
                    body_schema["properties"].pop(name, None)
                body_schema["required"] = [
                    r for r in body_schema.get("required", []) if r not in hidden
                ]
                if not body_schema["required"]:
                    del body_schema["required"]
                body_name = f"{params_name}Body"
                body_schema["title"] = body_name
                self.schemas[body_name] = body_schema
                body_schema = {"$ref": REF.format(model=body_name)}
                remaining = self.schemas[body_name]["properties"]
            else:
                remaining = properties
            if remaining:
                must = bool(required - hidden) or "minProperties" in params_schema
                document["requestBody"] = {
                    "required": must,
                    "content": {"application/json": {"schema": body_schema}},
                }
        else:
            for name, schema in properties.items():
                if name in hidden:
                    continue
                parameter: dict[str, Any] = {
                    "name": name,
                    "in": "query",
                    "required": name in required,
                    "schema": schema,
                }
                if _is_array(schema):
                    parameter.update(style="form", explode=True)
                if "description" in schema:
                    parameter["description"] = schema["description"]
                parameters.append(parameter)
        if http.if_match:
            parameters.append(
                {
                    "name": "If-Match",
                    "in": "header",
                    "required": False,
                    "description": "Apply only if the entity's version is this ETag's "
                    '(like `"3"`, or `"3-admin"` as a workspace\'s: the version counts); '
                    "otherwise 412. `*`: whatever version is current (the entity must be "
                    'there). A weak tag (`W/"3"`) never matches: 412. A list of ETags '
                    '(`"3", "3-admin"`, RFC 9110) is taken too, if its tags name one '
                    "version; tags naming two versions are 400",
                    "schema": {
                        "type": "string",
                        # One tag, or *: a list is described, not patterned (one naming
                        # two versions is a 400, which no schema-valid value may earn).
                        "pattern": '^(\\*|(W/)?"?[1-9][0-9]{0,8}(-[a-z]{1,20})?"?)$',
                    },
                }
            )
        if http.etag and http.method == "GET":
            parameters.append(
                {
                    "name": "If-None-Match",
                    "in": "header",
                    "required": False,
                    "description": "The ETag you hold: 304 if it is still current",
                    "schema": {"type": "string"},
                }
            )
        if op.mutating:
            parameters.append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "Send a retry with the same key and body: it is applied "
                    "once and answered with the first response; the same key with another "
                    "body is 422 `unprocessable`",
                    "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,200}$"},
                }
            )
        if parameters:
            document["parameters"] = parameters
        document["responses"] = self._responses(op)
        if op.access is Access.PUBLIC:
            document["security"] = [{}, {"bearer": []}]
        else:
            document["security"] = [{"bearer": []}]
        return document

    def _responses(self, op: Operation) -> dict[str, Any]:
        assert op.http is not None
        http = op.http
        responses: dict[str, Any] = {}
        success: dict[str, Any] = {"description": "Success"}
        if http.status != 204:
            result_ref = self.refs.get((op.result, "serialization"))
            success["content"] = {"application/json": {"schema": result_ref or {}}}
        if http.etag:
            described = (
                f"The entity's version and your {http.etag_caller} in it (like "
                f'`"3-admin"`: it changes when either does)'
                if http.etag_caller
                else "The entity's version"
            )
            success["headers"] = {
                "ETag": {
                    "description": f"{described}, for If-Match and If-None-Match",
                    "schema": {"type": "string"},
                }
            }
        responses[str(http.status)] = success
        if http.etag and http.method == "GET":
            responses["304"] = {"description": "Not modified: your ETag is current"}
        by_status: dict[int, list[ErrorCode]] = defaultdict(list)
        for code in errors_of(op):
            by_status[STATUS_OF[code]].append(code)
        for status in sorted(by_status):
            codes = by_status[status]
            responses[str(status)] = {
                "description": "; ".join(f"`{c.value}`: {TITLE_OF[c]}" for c in codes),
                "content": {
                    PROBLEM: {
                        "schema": {
                            "allOf": [{"$ref": REF.format(model="Problem")}],
                            "properties": {"code": {"enum": [c.value for c in codes]}},
                        }
                    }
                },
            }
        return responses


def _is_array(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "array":
        return True
    return any(s.get("type") == "array" for s in schema.get("anyOf", []))


def build_document(
    catalog: Catalog,
    extra: list[DocumentedRoute] | None = None,
    *,
    title: str = "Hubbub API",
    version: str = "1",
) -> dict[str, Any]:
    builder = _Builder(catalog)
    paths: dict[str, dict[str, Any]] = defaultdict(dict)
    for op in builder.ops:
        assert op.http is not None
        paths[API_PREFIX + op.http.path][op.http.method.lower()] = builder.operation(op)
    for route in [*default_routes(), *(extra or [])]:
        paths[route.path][route.method.lower()] = route.operation
        builder.schemas.update(route.schemas)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Every operation is also a WebSocket RPC method named by its "
            "operationId, with the same params (path, query and body fields together; "
            "`expected_version` instead of If-Match, answering 409 instead of 412). "
            "Errors are RFC 9457 problem details with a stable `code`.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(builder.schemas.items())),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The access token from /auth/login or /auth/refresh",
                },
                "service_key": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Api-Key",
                    "description": "A service API key (`hubbub apikey create`); "
                    "`Authorization: Bearer hbk_…` works too",
                },
            },
        },
    }
    _tighten(document)
    return document


def default_routes() -> list[DocumentedRoute]:
    """The hub's own routes outside the catalog."""
    problem = {"$ref": REF.format(model="Problem")}
    return [
        DocumentedRoute(
            "GET",
            API_PREFIX + "/health",
            {
                "operationId": "health",
                "summary": "The hub process is alive",
                "tags": ["system"],
                "security": [{}],
                "responses": {
                    "200": {
                        "description": "Alive",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["status"],
                                    "properties": {"status": {"const": "ok"}},
                                }
                            }
                        },
                    }
                },
            },
        ),
        DocumentedRoute(
            "GET",
            API_PREFIX + "/ready",
            {
                "operationId": "ready",
                "summary": "A round trip through a worker to PostgreSQL and Redis works",
                "tags": ["system"],
                "security": [{}],
                "responses": {
                    status: {
                        "description": description,
                        "content": {
                            "application/json": {"schema": {"$ref": REF.format(model="Readiness")}}
                        },
                    }
                    for status, description in (
                        ("200", "Ready"),
                        ("503", "Not ready: see `failing`"),
                    )
                },
            },
            schemas={
                "Readiness": {
                    "type": "object",
                    "required": ["status", "components"],
                    "properties": {
                        "status": {"enum": ["ok", "unavailable"]},
                        "components": {
                            "type": "object",
                            "additionalProperties": {"enum": ["ok", "degraded", "unavailable"]},
                        },
                        "failing": {"type": "array", "items": {"type": "string"}},
                    },
                }
            },
        ),
        DocumentedRoute(
            "GET",
            API_PREFIX + "/openapi.json",
            {
                "operationId": "openapi",
                "summary": "This document",
                "tags": ["system"],
                "security": [{}],
                "responses": {
                    "200": {
                        "description": "The OpenAPI 3.1 document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "500": {"description": "internal", "content": {PROBLEM: {"schema": problem}}},
                },
            },
        ),
    ]
