"""NATS subject and stream names, all under an optional namespace.

The namespace (setting ``HUBBUB_NAMESPACE``, empty by default) prefixes every subject
and stream, so several Hubbub deployments — or test runs — can share one NATS server.

============================  =====================================================
``svc.<domain>.<op>``         requests to workers (queue group ``workers``)
``evt.<kind>.<name>``         publications: captured by JetStream (the history)
``live.<kind>.<name>``        the stream's republish of each stored publication, with
                              ``Nats-Sequence`` (the offset) and ``Nats-Last-Sequence``
``presence.<kind>.<name>``    join/leave between hubs (not kept)
``ctl.user.<id>``             control for a user's sockets (revoked, deactivated)
``ctl.worker.<id>``           a worker's heartbeat, to every hub (``contracts/heartbeat.py``)
``ctl.apikey.revoked``        a service API key revoked, to every hub (``contracts/key_control.py``)
============================  =====================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from hubbub.contracts.channels import Channel, ChannelKind

WORKER_QUEUE = "workers"


@dataclass(frozen=True, slots=True)
class Subjects:
    namespace: str = ""

    @property
    def _p(self) -> str:
        return f"{self.namespace}." if self.namespace else ""

    def service(self, method: str) -> str:
        return f"{self._p}svc.{method}"

    @property
    def service_wildcard(self) -> str:
        return f"{self._p}svc.>"

    def method_of(self, subject: str) -> str:
        """``[ns.]svc.resources.create`` → ``resources.create``."""
        return subject[len(self._p) + 4 :]

    def event(self, channel: Channel) -> str:
        return f"{self._p}evt.{channel.kind.value}.{channel.name}"

    def event_wildcard(self, kind: ChannelKind) -> str:
        return f"{self._p}evt.{kind.value}.>"

    def live(self, channel: Channel) -> str:
        return f"{self._p}live.{channel.kind.value}.{channel.name}"

    def live_wildcard(self, kind: ChannelKind) -> str:
        return f"{self._p}live.{kind.value}.>"

    def channel_of_live(self, subject: str) -> Channel:
        _, kind, name = subject[len(self._p) :].split(".", 2)
        return Channel(ChannelKind(kind), name)

    def presence(self, channel: Channel) -> str:
        return f"{self._p}presence.{channel.kind.value}.{channel.name}"

    def control_user(self, user_id: str) -> str:
        return f"{self._p}ctl.user.{user_id}"

    @property
    def control_wildcard(self) -> str:
        return f"{self._p}ctl.>"

    @property
    def control_api_keys(self) -> str:
        return f"{self._p}ctl.apikey.revoked"

    @property
    def control_users(self) -> str:
        return f"{self._p}ctl.user.*"

    def worker_beat(self, worker_id: str) -> str:
        return f"{self._p}ctl.worker.{worker_id}"

    @property
    def worker_beats(self) -> str:
        return f"{self._p}ctl.worker.*"

    def stream(self, kind: ChannelKind) -> str:
        ns = self.namespace.replace("-", "_").upper()
        return f"{ns + '_' if ns else ''}EVT_{kind.value.upper()}"
