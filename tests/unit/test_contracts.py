"""The shared contracts: error codes, channel names, subjects, operations."""

from __future__ import annotations

import uuid

import orjson
import pytest
from pydantic import BaseModel, ValidationError

from hubbub.contracts.api.resources import ResourceUpdate
from hubbub.contracts.api.workspaces import WorkspaceUpdate
from hubbub.contracts.channels import DEFAULT_POLICIES, Channel, ChannelKind
from hubbub.contracts.errors import (
    ERROR_CLASSES,
    MAX_REPORTED_ERRORS,
    STATUS_OF,
    BadRequest,
    ErrorCode,
    HubbubError,
    Internal,
    RateLimited,
    Unavailable,
    validation_failed_from,
)
from hubbub.contracts.operations import Access, Catalog, Http, Operation
from hubbub.contracts.subjects import Subjects


class TestErrors:
    def test_every_code_has_a_class_and_a_status(self) -> None:
        assert set(ERROR_CLASSES) == set(ErrorCode) == set(STATUS_OF)

    def test_the_wire_form_round_trips_to_the_same_class(self) -> None:
        for code, cls in ERROR_CLASSES.items():
            error = cls("why", extra=1)
            again = HubbubError.from_dict(error.to_dict())
            assert (type(again), again.message, again.details, again.status) == (
                cls,
                "why",
                {"extra": 1, "retry_after": 1} if cls is Unavailable else {"extra": 1},
                STATUS_OF[code],
            )

    def test_every_unavailable_says_when_to_retry(self) -> None:
        """Retry-After on REST, ``details.retry_after`` in WS frames: 1 s unless told."""
        assert Unavailable().details == {"retry_after": 1}
        assert Unavailable(retry_after=5).retry_after == 5
        assert HubbubError.from_dict({"code": "unavailable", "details": {}}).retry_after == 1

    def test_an_unknown_code_becomes_internal(self) -> None:
        assert type(HubbubError.from_dict({"code": "weird", "message": "m"})) is Internal

    def test_retry_after_is_a_positive_whole_number(self) -> None:
        assert RateLimited(retry_after=0.2).retry_after == 1
        assert RateLimited(retry_after=30).retry_after == 30

    def test_validation_errors_name_the_field_and_hide_the_input(self) -> None:
        error = validation_failed_from(
            [{"loc": ("body", "email"), "msg": "not an email", "type": "value_error", "input": "x"}]
        )
        assert error.message == "body.email: not an email"
        assert error.details == {
            "errors": [{"loc": ["body", "email"], "msg": "not an email", "type": "value_error"}]
        }

    def test_many_errors_are_answered_with_the_first_ones_and_a_count(self) -> None:
        """A body of thousands of unknown keys is not answered with an error each."""
        key = "k" * 500
        many = [
            {"loc": ("body", f"{key}{i}"), "msg": "Extra inputs are not permitted", "type": "x"}
            for i in range(5000)
        ]
        error = validation_failed_from(many)
        reported = error.details["errors"]
        assert isinstance(reported, list)
        assert len(reported) == MAX_REPORTED_ERRORS
        assert error.details["more"] == 5000 - MAX_REPORTED_ERRORS
        assert reported[0]["loc"] == ["body", "k" * 63 + "…"]
        assert len(orjson.dumps(error.to_dict())) < 10_000


def _wire_errors(model: type[BaseModel], params: dict[str, object]) -> list[dict[str, object]]:
    try:
        model.model_validate(params)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        return list(validation_failed_from(errors).details["errors"])  # type: ignore[arg-type]
    raise AssertionError("valid")


class TestValidationErrorsOfOptionalFields:
    """A PATCH field is ``X | None``: pydantic fails each member of the union."""

    IDS = {"workspace_id": str(uuid.uuid4()), "resource_id": str(uuid.uuid4())}

    def test_a_refused_value_is_one_error_at_the_field(self) -> None:
        errors = _wire_errors(ResourceUpdate, {**self.IDS, "title": "x" * 1000})
        assert [(e["loc"], e["type"]) for e in errors] == [(["title"], "string_too_long")]

    def test_a_refused_item_is_at_its_place_in_the_field(self) -> None:
        errors = _wire_errors(ResourceUpdate, {**self.IDS, "tags": ["ok", "not ok"]})
        assert [e["loc"] for e in errors] == [["tags", "1"]]

    def test_fields_in_the_wrong_shape_are_each_one_error(self) -> None:
        errors = _wire_errors(ResourceUpdate, {**self.IDS, "status": 5, "body": []})
        assert [(e["loc"], e["type"]) for e in errors] == [
            (["body"], "string_type"),
            (["status"], "string_type"),
        ]

    def test_within_a_field_no_member_label_is_left(self) -> None:
        errors = _wire_errors(ResourceUpdate, {**self.IDS, "data": {"a": 1, "b\u0000": 2}})
        assert errors
        assert all(e["loc"][:2] == ["data", "b\u0000"] for e in errors), errors
        assert not [e for e in errors if e["type"] == "none_required"]

    @pytest.mark.parametrize("key", ["list[1]", "dict[a]", "function-after[x]"])
    def test_a_key_of_the_clients_that_looks_like_a_member_label_stays(self, key: str) -> None:
        errors = _wire_errors(ResourceUpdate, {**self.IDS, "data": {key: "a\u0000b"}})
        assert errors
        assert all(e["loc"][:2] == ["data", key] for e in errors), errors

    def test_null_where_only_leaving_out_is_allowed_stays_at_the_field(self) -> None:
        errors = _wire_errors(WorkspaceUpdate, {"workspace_id": str(uuid.uuid4()), "name": None})
        assert [e["loc"] for e in errors] == [["name"]]

    def test_a_field_that_must_be_null_keeps_its_error(self) -> None:
        class Nothing(BaseModel):
            gone: None = None

        errors = _wire_errors(Nothing, {"gone": 1})
        assert [(e["loc"], e["type"]) for e in errors] == [(["gone"], "none_required")]


class TestChannels:
    @pytest.mark.parametrize(
        ("raw", "kind", "name"),
        [
            ("workspace:0f8c2a", ChannelKind.WORKSPACE, "0f8c2a"),
            ("ticker:BTC-USD_1", ChannelKind.TICKER, "BTC-USD_1"),
        ],
    )
    def test_valid_names_parse(self, raw: str, kind: ChannelKind, name: str) -> None:
        channel = Channel.parse(raw)
        assert (channel.kind, channel.name, str(channel)) == (kind, name, raw)

    @pytest.mark.parametrize("kind", ["workspace", "chat", "user"])
    def test_an_id_channel_has_one_spelling(self, kind: str) -> None:
        """Upper-case or unhyphenated spellings of an id would alias the canonical
        channel past its ACL cache entry and its revocations, so they are refused."""
        ident = "0b5e1f6a-3c2d-4e7f-8a9b-1c2d3e4f5a6b"
        assert str(Channel.parse(f"{kind}:{ident}")) == f"{kind}:{ident}"
        for alias in (ident.upper(), ident.replace("-", ""), ident.replace("-", "").upper()):
            with pytest.raises(BadRequest, match="canonical form"):
                Channel.parse(f"{kind}:{alias}")

    def test_names_of_other_kinds_keep_their_case(self) -> None:
        ident = "0B5E1F6A-3C2D-4E7F-8A9B-1C2D3E4F5A6B"
        assert Channel.parse(f"public:{ident}").name == ident

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            ("workspace:*", "1-64 characters"),
            ("workspace:>", "1-64 characters"),
            ("workspace:a.b", "1-64 characters"),
            ("workspace:a b", "1-64 characters"),
            ("workspace:", "1-64 characters"),
            ("nokind", "<kind>:<name>"),
            ("secret:x", "unknown channel kind"),
            ("workspace:" + "a" * 65, "1-64 characters"),
            ("workspace:" + "a" * 100, "longer than"),
            (42, "must be a string"),
            ("workspace:ü", "1-64 characters"),
        ],
    )
    def test_forged_names_and_wildcards_are_refused(self, raw: object, reason: str) -> None:
        with pytest.raises(BadRequest, match=reason):
            Channel.parse(raw)


class TestSubjects:
    def test_the_default_namespace_is_the_bare_brief_subjects(self) -> None:
        s = Subjects()
        ch = Channel.parse("workspace:w1")
        assert (
            s.service("resources.create"),
            s.event(ch),
            s.live(ch),
            s.stream(ChannelKind.WORKSPACE),
        ) == ("svc.resources.create", "evt.workspace.w1", "live.workspace.w1", "EVT_WORKSPACE")

    def test_a_namespace_prefixes_everything(self) -> None:
        s = Subjects("t1")
        ch = Channel.parse("user:u1")
        assert s.service("a.b") == "t1.svc.a.b"
        assert s.method_of(s.service("a.b")) == "a.b"
        assert s.channel_of_live(s.live(ch)) == ch
        assert s.stream(ChannelKind.USER) == "T1_EVT_USER"
        assert s.control_user("u1") == "t1.ctl.user.u1"


class P(BaseModel):
    workspace_id: str
    title: str = ""


class TestOperations:
    def test_names_must_be_domain_dot_op(self) -> None:
        with pytest.raises(ValueError, match=r"must be <domain>\.<op>"):
            Operation("NoDot", P, P, Access.USER)

    def test_the_actor_key_must_be_a_params_field(self) -> None:
        with pytest.raises(ValueError, match="key 'nope'"):
            Operation("a.b", P, P, Access.USER, key="nope")

    def test_path_parameters_must_be_params_fields(self) -> None:
        with pytest.raises(ValueError, match="path parameter 'other'"):
            Operation("a.b", P, P, Access.USER, Http("GET", "/w/{other}"))
        op = Operation("a.b", P, P, Access.USER, Http("PATCH", "/w/{workspace_id}"))
        assert op.http is not None
        assert (op.http.path_params, op.http.has_body) == (("workspace_id",), True)

    def test_a_catalog_refuses_a_name_twice(self) -> None:
        catalog = Catalog()
        catalog.add(Operation("a.b", P, P, Access.USER))
        with pytest.raises(ValueError, match="defined twice"):
            catalog.add(Operation("a.b", P, P, Access.USER))


class TestReadOnly:
    def test_a_get_route_reads_only_unless_it_says_otherwise(self) -> None:
        get = Operation("a.get", P, P, Access.USER, Http("GET", "/w/{workspace_id}"))
        post = Operation("a.post", P, P, Access.USER, Http("POST", "/w/{workspace_id}"))
        explicit = Operation("a.x", P, P, Access.USER, Http("GET", "/w"), read_only=False)
        assert (get.reads_only, post.reads_only, explicit.reads_only) == (True, False, False)

    def test_an_operation_cannot_both_mutate_and_read_only(self) -> None:
        with pytest.raises(ValueError, match="cannot both"):
            Operation("a.b", P, P, Access.USER, mutating=True, read_only=True)


class TestStreamLimits:
    def test_every_history_stream_is_capped_in_bytes(self) -> None:
        """No publisher can fill the server's disk: each kind's stream has a byte cap."""
        from hubbub.streams import stream_config

        for kind, policy in DEFAULT_POLICIES.items():
            config = stream_config(Subjects("t1"), kind, policy)
            assert config.max_bytes == policy.history_max_bytes
            assert 0 < policy.history_max_bytes <= 256 * 1024 * 1024

    def test_a_deployment_sets_a_kinds_cap(self) -> None:
        from hubbub.config import Settings

        settings = Settings(channel_policies={"chat": {"history_max_bytes": 1_000_000}})
        assert settings.policies()[ChannelKind.CHAT].history_max_bytes == 1_000_000
