"""JetStream's error answers become nats-py's exceptions of their code's class, even one
with a field nats-py's ``APIError`` does not take (the relay sets a refused row aside by
that class: a ``TypeError`` instead would stop every event behind it)."""

from __future__ import annotations

from nats.js.errors import APIError, BadRequestError, ServiceUnavailableError

from workers.relay import _api_error


def test_an_answer_with_a_field_nats_py_does_not_know_keeps_its_class() -> None:
    refused = _api_error({"code": 400, "description": "too big", "new_field": 1})
    assert isinstance(refused, BadRequestError)
    assert refused.description == "too big"
    other = _api_error({"code": 418, "description": "?", "new_field": 1})
    assert type(other) is APIError
    assert other.code == 418


def test_known_answers_are_their_classes() -> None:
    assert isinstance(_api_error({"code": 400, "description": "x"}), BadRequestError)
    assert isinstance(_api_error({"code": 503, "description": "y"}), ServiceUnavailableError)
