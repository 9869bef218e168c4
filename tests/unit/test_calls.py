"""The edge's rules that REST and WebSocket RPC share (``hub/calls.py``), as pure logic."""

from __future__ import annotations

import pytest

from hub import calls
from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.errors import BadRequest, Forbidden, NotFound, Unauthorized
from hubbub.contracts.operations import Access, Catalog, NoParams, Operation

ANONYMOUS = Caller(kind=CallerKind.ANONYMOUS)
MEMBER = Caller(kind=CallerKind.USER, user_id="u", role="member", session_id="s")
ADMIN = Caller(kind=CallerKind.USER, user_id="a", role="admin", session_id="s")


def op(access: Access, *, mutating: bool = False) -> Operation:
    return Operation(f"t.{access.value}", NoParams, NoParams, access, mutating=mutating)


class TestIdempotencyKey:
    @pytest.mark.parametrize("key", ["a", "~" * 200, "9f1c-4e:retry/2", "!#$%&'()*+,./"])
    def test_visible_ascii_of_1_to_200_characters_passes(self, key: str) -> None:
        assert calls.check_idempotency_key(key) == key

    @pytest.mark.parametrize("key", ["", "x" * 201, "has space", "tab\t", "naïve", "\x7f"])
    def test_anything_else_is_a_bad_request(self, key: str) -> None:
        with pytest.raises(BadRequest):
            calls.check_idempotency_key(key)

    def test_only_a_mutating_operation_passes_its_key_on(self) -> None:
        assert calls.admit(op(Access.USER, mutating=True), MEMBER, "k") == "k"
        assert calls.admit(op(Access.USER), MEMBER, "k") is None
        with pytest.raises(BadRequest):  # the rule holds wherever a key is sent
            calls.admit(op(Access.USER), MEMBER, "bad key")


class TestAccess:
    def test_who_may_call_what(self) -> None:
        calls.check_access(op(Access.PUBLIC), ANONYMOUS)
        calls.check_access(op(Access.USER), MEMBER)
        calls.check_access(op(Access.ADMIN), ADMIN)
        with pytest.raises(Unauthorized):
            calls.check_access(op(Access.USER), ANONYMOUS)
        with pytest.raises(Forbidden):
            calls.check_access(op(Access.ADMIN), MEMBER)

    @pytest.mark.parametrize("access", [Access.INTERNAL, Access.SERVICE])
    def test_internal_and_service_operations_are_not_found(self, access: Access) -> None:
        catalog = Catalog()
        catalog.add(op(access))
        with pytest.raises(NotFound):
            calls.operation(catalog, f"t.{access.value}")
        with pytest.raises(NotFound):
            calls.check_access(op(access), ADMIN)

    def test_an_unknown_method_is_not_found(self) -> None:
        with pytest.raises(NotFound):
            calls.operation(Catalog(), "nope.nothing")


class TestRequestId:
    def test_a_safe_incoming_id_is_kept_and_anything_else_replaced(self) -> None:
        assert calls.request_id("trace-1234.abc") == "trace-1234.abc"
        minted = {calls.request_id("bad id!"), calls.request_id(None), calls.request_id()}
        assert len(minted) == 3
        assert all(len(r) == 32 for r in minted)
