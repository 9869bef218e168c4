"""The trust boundary on NATS: an authenticated server whose permissions the server
enforces (cli/embedded/nats_auth.py), and workers that believe only a hub's callers
(hubbub/callers.py). A hub and a worker run here as `hubbub up` runs them: each with its
role's credentials on an embedded NATS that refuses anonymous clients."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest
from aiohttp.test_utils import TestServer
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError

from cli.admin.apikeys import tell_hubs
from cli.admin.services import manage_services
from cli.embedded import EmbeddedNats
from cli.embedded.nats_auth import NatsAuthFolder, ServiceUser
from cli.runtime import hold_state_dir, write_runtime
from examples.backend_service import publish_over_nats
from hub.app import create_app
from hubbub.bus import Bus
from hubbub.callers import CallerSigner
from hubbub.config import Settings
from hubbub.contracts.envelope import H_ERROR, Caller, CallerKind
from hubbub.contracts.subjects import Subjects
from hubbub.natsauth import HUB_INBOX_PREFIX, nats_auth
from hubbub.natsconn import connect_nats
from tests.e2e.conftest import ClientFactory
from tests.e2e.test_realtime import next_pub
from tests.support import ops
from tests.support.nats_auth import as_role, made_auth_folder, streams_connection
from tests.support.nats_errors import ServerErrors
from tests.support.waiting import eventually, wait_for

# --- an authenticated NATS, and this module's hub and worker on it ------------------------


@pytest.fixture
def auth_folder(tmp_path: Path, namespace: str) -> NatsAuthFolder:
    return made_auth_folder(tmp_path, namespace)


@pytest.fixture
def auth_nats(tmp_path: Path, auth_folder: NatsAuthFolder) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path / "nats", config=auth_folder.config_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(settings: Settings, auth_nats: EmbeddedNats, auth_folder: NatsAuthFolder) -> Settings:
    """The worker's settings: the authenticated NATS, as the worker user."""
    return as_role(settings, auth_folder, "worker", nats_url=auth_nats.url)


@pytest.fixture
def hub_settings(settings: Settings, auth_folder: NatsAuthFolder) -> Settings:
    return as_role(settings, auth_folder, "hub")


@pytest.fixture
async def nc(settings: Settings) -> AsyncIterator[NATS]:
    """A connection as the worker user (the streams need it), with this test's streams."""
    async with streams_connection(settings) as conn:
        yield conn


@pytest.fixture
async def hub_server(
    hub_settings: Settings, aiohttp_server: Any, worker: Any, nc: NATS
) -> TestServer:
    server: TestServer = await aiohttp_server(create_app(hub_settings, ops.catalog_with_tests()))
    return server


async def try_connect(url: str, **options: Any) -> NATS | Exception:
    """A connection, or why the server refused it (closing what the attempt opened)."""
    conn = NATS()
    try:
        await conn.connect(
            url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=5, **options
        )
    except (NatsError, OSError) as exc:
        await conn.close()
        return exc
    return conn


async def connect_as(
    url: str, user: str, password: str, violations: ServerErrors, **options: Any
) -> NATS:
    return await nats.connect(
        url,
        user=user,
        password=password,
        error_cb=violations.record,
        allow_reconnect=False,
        connect_timeout=5,
        **options,
    )


async def assert_refused(
    url: str, user: str, password: str, action: str, subject: str, payload: bytes = b"{}"
) -> None:
    """``user`` may not ``action`` ("publish" or "subscription") on ``subject``: the
    server answers with a permissions violation (a flush is the barrier)."""
    violations = ServerErrors()
    conn = await connect_as(url, user, password, violations)
    try:
        if action == "publish":
            await conn.publish(subject, payload)
        else:
            await conn.subscribe(subject)
        await conn.flush()
        await violations.wait_for(f'permissions violation for {action} to "{subject}"')
    finally:
        await conn.close()


@pytest.fixture
async def service(auth_folder: NatsAuthFolder, auth_nats: EmbeddedNats) -> ServiceUser:
    """A service granted ``public:*``, added while the server runs (a config reload)."""
    user = auth_folder.add_service("news", ["public:*"])
    auth_nats.reload()

    async def accepted() -> bool:
        conn = await try_connect(auth_nats.url, user=user.user, password=user.password)
        if isinstance(conn, Exception):  # refused: the reload is not done yet
            return False
        await conn.close()
        return True

    await wait_for(accepted, timeout=10, what="the server to know the new service user")
    return user


# --- authentication ----------------------------------------------------------------------


class TestAuthentication:
    async def test_an_anonymous_client_is_refused(self, auth_nats: EmbeddedNats) -> None:
        """Without credentials the server refuses the connection."""
        refused = await try_connect(auth_nats.url)
        assert "Authorization Violation" in str(refused)

    async def test_a_wrong_password_is_refused(self, auth_nats: EmbeddedNats) -> None:
        """A known user with a wrong password is refused."""
        refused = await try_connect(auth_nats.url, user="hub", password="not-the-password")
        assert "Authorization Violation" in str(refused)

    def test_the_credentials_are_private_and_made_once(
        self, tmp_path: Path, auth_folder: NatsAuthFolder
    ) -> None:
        """Role passwords and the config are mode 0600 and survive a second ensure()."""
        before = auth_folder.password("hub")
        auth_folder.ensure()
        assert auth_folder.password("hub") == before
        for path in auth_folder.folder.iterdir():
            assert path.stat().st_mode & 0o777 == 0o600, path
        assert auth_folder.folder.stat().st_mode & 0o777 == 0o700


# --- authorization: what a service may not do ----------------------------------------------


class TestServicePermissions:
    @pytest.mark.parametrize("what", ["svc.>", "_INBOX.>", "ctl.>", f"{HUB_INBOX_PREFIX}.>"])
    async def test_a_service_cannot_subscribe_to_requests_replies_or_control(
        self, auth_nats: EmbeddedNats, service: ServiceUser, namespace: str, what: str
    ) -> None:
        """The server refuses the subscription with a permissions violation."""
        subject = what if what.startswith("_") else f"{namespace}.{what}"
        await assert_refused(auth_nats.url, service.user, service.password, "subscription", subject)

    @pytest.mark.parametrize(
        "what", ["svc.users.update", "ctl.user.u1", "evt.user.u1", "evt.workspace.w1"]
    )
    async def test_a_service_cannot_publish_requests_control_or_ungranted_channels(
        self, auth_nats: EmbeddedNats, service: ServiceUser, namespace: str, what: str
    ) -> None:
        """Publishing outside the granted channels is a permissions violation."""
        subject = f"{namespace}.{what}"
        await assert_refused(auth_nats.url, service.user, service.password, "publish", subject)

    async def test_a_hub_cannot_publish_control_messages(
        self, auth_nats: EmbeddedNats, auth_folder: NatsAuthFolder, namespace: str
    ) -> None:
        """Only workers lift or impose a deactivation: ctl.> is not the hub's to publish."""
        subject = f"{namespace}.ctl.user.u1"
        payload = b'{"type": "reactivated"}'
        hub_password = auth_folder.password("hub")
        await assert_refused(auth_nats.url, "hub", hub_password, "publish", subject, payload)

    async def test_a_worker_takes_requests_only_in_the_workers_queue_group(
        self, auth_nats: EmbeddedNats, auth_folder: NatsAuthFolder, namespace: str
    ) -> None:
        """A plain subscription to svc.> (a copy of every request) is refused."""
        subject = f"{namespace}.svc.>"
        worker_password = auth_folder.password("worker")
        await assert_refused(auth_nats.url, "worker", worker_password, "subscription", subject)


class TestForgedAcks:
    """JetStream answers a publication on its stream's subject with an ack to the reply
    subject the publisher named, and the server checks no permission for that. A service
    whose ack could go anywhere in the hubs' and workers' account would publish there."""

    async def test_a_service_cannot_aim_its_jetstream_ack_at_a_hub_or_worker_subject(
        self,
        auth_nats: EmbeddedNats,
        auth_folder: NatsAuthFolder,
        service: ServiceUser,
        namespace: str,
        nc: NATS,
    ) -> None:
        """Acks aimed at control, a hub's reply inbox and a request subject reach no hub
        or worker; the service's own publish still gets its ack and reaches the hub."""
        hub_violations, worker_violations = ServerErrors(), ServerErrors()
        hub = await connect_as(auth_nats.url, "hub", auth_folder.password("hub"), hub_violations)
        worker = await connect_as(
            auth_nats.url, "worker", auth_folder.password("worker"), worker_violations
        )
        svc = await connect_as(
            auth_nats.url,
            service.user,
            service.password,
            ServerErrors(),
            inbox_prefix=service.inbox_prefix,
        )
        received: list[tuple[str, bytes]] = []

        async def record(msg: Msg) -> None:
            received.append((msg.subject, msg.data))

        try:
            for subject in (f"{namespace}.live.>", f"{namespace}.ctl.>", f"{HUB_INBOX_PREFIX}.>"):
                await hub.subscribe(subject, cb=record)
            await worker.subscribe(f"{namespace}.svc.>", queue="workers", cb=record)
            await hub.flush()
            await worker.flush()

            channel = f"{namespace}.evt.public.wire"
            aimed_at = [
                f"{namespace}.ctl.user.victim",
                f"{HUB_INBOX_PREFIX}.forged.1",
                f"{namespace}.svc.system.ready",
            ]
            for reply in aimed_at:
                await svc.publish(channel, b'{"forged": true}', reply=reply)
            ack = await svc.jetstream().publish(channel, b'{"last": true}', timeout=5)

            # The stream republishes each message to the hub and then sends its ack, in
            # order: once the hub has the last one, every earlier ack went out before it.
            await wait_for(
                lambda: (f"{namespace}.live.public.wire", b'{"last": true}') in received,
                what="the service's own publication at the hub",
            )
            await worker.flush()
            await hub.flush()
            assert ack.seq > 0
            assert [subject for subject, _ in received if subject in aimed_at] == []
        finally:
            for conn in (svc, worker, hub):
                await conn.close()


# --- a service publishes on its channel, a browser gets it ----------------------------------


class TestGrantedService:
    async def test_a_service_publication_on_its_channel_reaches_a_browser(
        self,
        auth_nats: EmbeddedNats,
        service: ServiceUser,
        client: ClientFactory,
        settings: Settings,
    ) -> None:
        """With its credential, the example service publishes through JetStream."""
        sub = await (await client("reader")).subscribe("public:wire")
        offset = await publish_over_nats(
            auth_nats.url,
            "public:wire",
            {"text": "hello"},
            namespace=settings.namespace,
            user=service.user,
            password=service.password,
            inbox_prefix=service.inbox_prefix,
        )
        got = await next_pub(sub)
        assert (got.offset, got.data) == (offset, {"text": "hello"})


# --- callers that cannot be forged ----------------------------------------------------------


class TestForgedCallers:
    """A client allowed to publish requests that is not a hub (here the worker user, the
    only other one) cannot make a worker believe it is a user."""

    async def ask(self, nc: NATS, namespace: str, envelope: dict[str, Any]) -> tuple[str, Any]:
        async def answered() -> Msg:
            try:
                return await nc.request(
                    f"{namespace}.svc.{ops.echo.name}", orjson.dumps(envelope), timeout=5
                )
            except NoRespondersError:  # the worker's subscription is not in place yet
                raise AssertionError("no worker answers yet") from None

        msg = await eventually(answered, timeout=15)
        return (msg.headers or {}).get(H_ERROR, "ok"), orjson.loads(msg.data)

    def envelope(self, caller: Caller, **extra: Any) -> dict[str, Any]:
        return {
            "params": {"key": "forged", "payload": {"done": True}},
            "caller": caller.model_dump(mode="json", exclude_none=True),
            "deadline": int((time.time() + 5) * 1000),
            "request_id": "forged",
            **extra,
        }

    ALICE = Caller(kind=CallerKind.USER, user_id="alice", role="admin")

    async def test_an_unsigned_user_caller_is_forbidden(
        self, nc: NATS, worker: Any, namespace: str
    ) -> None:
        """No signature: the worker refuses with forbidden and runs nothing."""
        ops.executed.pop("forged", None)
        code, body = await self.ask(nc, namespace, self.envelope(self.ALICE))
        assert (code, body["code"]) == ("forbidden", "forbidden")
        assert "forged" not in ops.executed

    async def test_a_caller_signed_with_another_key_is_forbidden(
        self, nc: NATS, worker: Any, namespace: str
    ) -> None:
        """A signature under a key that is not the hubs' is refused."""
        envelope = self.envelope(self.ALICE)
        forger = CallerSigner(b"x" * 32)
        envelope["caller_sig"] = forger.sign(
            orjson.dumps(envelope["caller"]), envelope["deadline"]
        ).decode()
        code, _ = await self.ask(nc, namespace, envelope)
        assert code == "forbidden"

    async def test_a_hub_signature_does_not_cover_another_deadline(
        self, nc: NATS, worker: Any, namespace: str, settings: Settings
    ) -> None:
        """A signed envelope whose deadline was moved (a replay kept alive) is refused."""
        envelope = self.envelope(self.ALICE)
        envelope["caller_sig"] = (
            CallerSigner.from_settings(settings)
            .sign(orjson.dumps(envelope["caller"]), envelope["deadline"])
            .decode()
        )
        envelope["deadline"] += 60_000
        code, _ = await self.ask(nc, namespace, envelope)
        assert code == "forbidden"

    async def test_a_request_without_a_caller_is_served_as_anonymous(
        self, nc: NATS, worker: Any, namespace: str
    ) -> None:
        """``caller: null`` needs no signature: it claims nothing."""
        envelope = self.envelope(self.ALICE)
        envelope["caller"] = None
        code, body = await self.ask(nc, namespace, envelope)
        assert (code, body["payload"]) == ("ok", {"done": True})

    async def test_a_hub_signed_caller_is_believed(
        self, nc: NATS, worker: Any, settings: Settings
    ) -> None:
        """Through the bus, signed as a hub signs it, the same request is served."""
        bus = Bus(nc, Subjects(settings.namespace), signer=CallerSigner.from_settings(settings))
        reply = await bus.request(
            ops.echo, {"key": "signed", "payload": {"done": True}}, caller=self.ALICE, timeout=5
        )
        assert reply.value.payload == {"done": True}


class TestReadsSentAgain:
    """A hub sends its reads in flight again when a worker is lost (hub/worker_watch.py);
    the workers may answer a reply subject only once (``allow_responses``)."""

    async def test_a_copy_that_reaches_the_worker_still_doing_the_read_is_answered(
        self, worker: Any, hub_settings: Settings
    ) -> None:
        """The only worker is handed the read and then its copy before it answers either:
        the read is still answered. Had the copy the read's own reply subject, NATS would
        refuse both of the worker's answers, and the read would time out."""
        assert hub_settings.nats_url
        hub_nc = await connect_nats(
            hub_settings.nats_url,
            "hubbub-test-hub",
            auth=nats_auth(hub_settings),
            inbox_prefix=HUB_INBOX_PREFIX,
        )
        try:
            bus = Bus(
                hub_nc,
                Subjects(hub_settings.namespace),
                signer=CallerSigner.from_settings(hub_settings),
            )
            read = asyncio.ensure_future(
                bus.request(ops.lookup, {"key": "held", "seq": 3, "delay": 1.0}, caller=None)
            )
            await wait_for(lambda: bus.replies.in_flight == 1, what="the read sent")
            await hub_nc.flush()  # NATS has handed it to the only worker there is
            assert bus.replies.resend() == 1
            await hub_nc.flush()  # the copy is the worker's too, before it answers
            assert (await asyncio.wait_for(read, 10)).value.seq == 3
        finally:
            await hub_nc.close()


# --- `hubbub service create/list/revoke` against a running embedded NATS --------------------


class TestServiceCommand:
    async def test_create_reloads_the_running_server_and_revoke_locks_the_service_out(
        self, tmp_path: Path, namespace: str, settings: Settings
    ) -> None:
        """The printed credential works at once on its channel; after revoke it is refused."""
        state = tmp_path / "up-state"
        folder = NatsAuthFolder.of_state_dir(state, namespace)
        folder.ensure()
        server = EmbeddedNats(tmp_path / "up-nats", config=folder.config_path)
        server.start()
        try:
            assert server.proc is not None
            # What `hubbub up` holds and records: the state folder, the servers' URLs and
            # pids (this process plays it).
            up_lock = hold_state_dir(state)
            assert up_lock is not None
            write_runtime(state, {"NATS_URL": server.url}, {"nats": server.proc.pid})
            up_settings = settings.model_copy(update={"state_dir": state, "nats_url": server.url})
            out = io.StringIO()
            code = manage_services(
                up_settings, "create", name="ticker", channels=["ticker:prices"], out=out
            )
            assert code == 0, out.getvalue()
            printed = dict(
                line.strip().split("=", 1) for line in out.getvalue().splitlines() if "=" in line
            )
            assert printed["NATS_USER"] == "svc-ticker"
            assert "the running embedded NATS has read it" in out.getvalue()

            async def connects() -> bool:
                conn = await try_connect(
                    server.url, user="svc-ticker", password=printed["NATS_PASSWORD"]
                )
                if isinstance(conn, Exception):
                    return False
                await conn.close()
                return True

            await wait_for(connects, timeout=10, what="the reloaded server to accept it")
            listed = io.StringIO()
            manage_services(up_settings, "list", out=listed)
            assert "ticker:prices" in listed.getvalue()

            assert manage_services(up_settings, "revoke", name="ticker", out=io.StringIO()) == 0

            async def refused() -> bool:
                return not await connects()

            await wait_for(refused, timeout=10, what="the reloaded server to refuse it")
            up_lock.close()
        finally:
            server.stop()

    def test_a_bad_channel_pattern_is_refused_with_the_reason(
        self, tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Nothing is stored when a pattern names no channel kind."""
        local = settings.model_copy(update={"state_dir": tmp_path / "s"})
        code = manage_services(local, "create", name="x", channels=["nope:*"], out=io.StringIO())
        assert code == 2
        assert "is not a channel pattern" in capsys.readouterr().err
        assert NatsAuthFolder.of_state_dir(tmp_path / "s").services() == []


class TestTellingHubsOfARevokedKey:
    async def test_a_revocation_the_server_refuses_to_carry_is_not_called_told(
        self, settings: Settings, hub_settings: Settings
    ) -> None:
        """As a worker, the command may publish on ``ctl.>``; with credentials that may
        not (a hub's), the server refuses the message, and the command says the hubs
        were not told (they stop taking the key when their memory of it runs out)."""
        key_hash = "ab" * 32
        assert await tell_hubs(settings, key_hash) is None
        refused = await tell_hubs(hub_settings, key_hash)
        assert refused is not None
        assert "permissions violation" in refused
