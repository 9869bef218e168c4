"""Schemathesis hooks for the Hubbub fuzz run (``SCHEMATHESIS_HOOKS=tests.fuzz.hooks``).

* Authentication: the fuzzer's access token, from a login; signed in again whenever a
  fuzzed call may have ended its session (``auth.logout``, ``auth.logout_all``,
  ``auth.refresh``... any 401). The site-admin routes (``users.list/get/update``) get
  the site admin's token, the publish API the service key.
* Site-admin changes: a ``users.update`` aimed at the fuzzer, the workspace owner or the
  admin itself (ids flow between calls) is aimed at a victim account instead, so the
  run never locks itself out; everything else about the call is left as generated.
* Idempotency keys: a well-formed ``Idempotency-Key`` is made unique per call. A key
  reused with another body is *meant* to be refused (422 ``unprocessable``), and the
  generator repeats small values; a client's contract is one key per distinct request.
  Malformed keys are left as generated (they must be refused with 400).
* Membership: if a fuzzed ``members.leave``/``remove``/``update`` takes the fuzzer out of
  its workspace (or demotes it), the owner invites it back as admin and it accepts (the
  token from the dev mail catcher) before the next call —
  except a call on the fuzzer's own member path: that one must see the removal (404),
  or schemathesis's use-after-free check rightly reports a deleted member answering.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from typing import Any

import requests
import schemathesis

from tests.fuzz.system import join

_lock = threading.Lock()
_token: str | None = None
_admin_token: str | None = None
_restore_pending = False
_ADMIN_ROUTES = ("users.list", "users.get", "users.update")
_PUBLISH_PATH = "/channels/{channel}/publish"


def _api() -> str:
    return os.environ["HUBBUB_FUZZ_URL"] + "/api/v1"


def _login(email_variable: str = "HUBBUB_FUZZ_EMAIL") -> str:
    response = requests.post(
        _api() + "/auth/login",
        json={
            "email": os.environ[email_variable],
            "password": os.environ["HUBBUB_FUZZ_PASSWORD"],
        },
        timeout=10,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def _forget() -> None:
    global _token, _admin_token
    with _lock:
        _token = None
        _admin_token = None


@schemathesis.auth(refresh_interval=None)
class FuzzerAuth:
    def get(self, case: Any, ctx: Any) -> str:
        global _token, _admin_token
        if case.operation.path.endswith(_PUBLISH_PATH):
            return os.environ["HUBBUB_FUZZ_SERVICE_KEY"]
        with _lock:
            if _operation_id(case) in _ADMIN_ROUTES:
                if _admin_token is None:
                    _admin_token = _login("HUBBUB_FUZZ_ADMIN_EMAIL")
                return _admin_token
            if _token is None:
                _token = _login()
            return _token

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = case.headers or {}
        if case.operation.path.endswith(_PUBLISH_PATH):
            # Where its security scheme says, so that the check that leaves the scheme
            # out of a request really sends none.
            case.headers["X-Api-Key"] = data
        else:
            case.headers["Authorization"] = f"Bearer {data}"


_KEY = re.compile(r"[\x21-\x7e]{1,200}")


def _operation_id(case: Any) -> str | None:
    operation_id: str | None = case.operation.definition.raw.get("operationId")
    return operation_id


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    global _restore_pending
    path = case.path_parameters or {}
    if _operation_id(case) == "users.update" and path.get("user_id") in _protected():
        path["user_id"] = os.environ["HUBBUB_FUZZ_VICTIM_ID"]
    if (
        _restore_pending
        and (case.path_parameters or {}).get("user_id") != os.environ["HUBBUB_FUZZ_USER_ID"]
    ):
        _restore_pending = False
        _restore_membership()
    headers = case.headers or {}
    for name in list(headers):
        value = headers[name]
        if name.lower() == "idempotency-key" and isinstance(value, str) and _KEY.fullmatch(value):
            headers[name] = uuid.uuid4().hex


@schemathesis.hook
def after_call(ctx: Any, case: Any, response: Any) -> None:
    global _restore_pending
    operation_id = _operation_id(case)
    if response.status_code == 401 or operation_id in ("auth.logout", "auth.logout_all"):
        _forget()
    if operation_id in ("members.leave", "members.remove", "members.update") and (
        200 <= response.status_code < 300
    ):
        _restore_pending = True


def _restore_membership() -> None:
    """The fuzzer may have removed or demoted itself (ids flow between calls in the
    stateful phase): its owner makes it an admin of the workspace again (an invitation
    the fuzzer accepts)."""
    owner = {"Authorization": f"Bearer {os.environ['HUBBUB_FUZZ_OWNER_TOKEN']}"}
    members = _api() + f"/workspaces/{os.environ['HUBBUB_FUZZ_WORKSPACE']}/members"
    added = requests.post(
        members,
        json={"email": os.environ["HUBBUB_FUZZ_EMAIL"], "role": "admin"},
        headers=owner,
        timeout=10,
    )
    if added.ok:  # an invitation: the fuzzer accepts it
        database_url = os.environ["HUBBUB_FUZZ_DATABASE_URL"]
        with requests.Session() as http:
            join(http, _api(), database_url, os.environ["HUBBUB_FUZZ_EMAIL"])
    elif added.status_code == 409:  # still a member: make sure of the role
        requests.patch(
            f"{members}/{os.environ['HUBBUB_FUZZ_USER_ID']}",
            json={"role": "admin"},
            headers=owner,
            timeout=10,
        )


def _protected() -> set[str]:
    return set(os.environ["HUBBUB_FUZZ_PROTECTED_IDS"].split(","))
