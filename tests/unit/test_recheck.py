"""The re-check pass's own logic, on stand-ins for the hub's sockets and authorizer: which
subscriptions it asks about, how many questions at once, and what each answer does.
(The real thing, with a cut NATS link, is tests/e2e/test_missed_revocations.py.)"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

from hub.ws.recheck import Rechecker
from hub.ws.service import Realtime
from hubbub.contracts.api.channels import ChannelAction
from hubbub.contracts.channels import DEFAULT_POLICIES, Channel
from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.errors import Forbidden, Unavailable


@dataclass(eq=False)
class FakeConn:
    user_id: str
    subs: dict[str, int]
    closed: bool = False

    @property
    def caller(self) -> Caller:
        return Caller(kind=CallerKind.USER, user_id=self.user_id, session_id="s")


@dataclass
class FakeAuthorizer:
    """Answers per channel name; holds every check until ``hold`` are in flight at once."""

    answers: dict[str, str] = field(default_factory=dict)  # allow | forbid | down
    hold: int = 0
    asked: list[tuple[str, str, bool]] = field(default_factory=list)
    in_flight: int = 0
    most: int = 0
    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def check(
        self, caller: Caller, channel: Channel, action: ChannelAction, *, fresh: bool = False
    ) -> None:
        assert action is ChannelAction.SUBSCRIBE
        self.asked.append((caller.user_id or "", str(channel), fresh))
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        if self.in_flight >= self.hold:
            self.released.set()
        try:
            await asyncio.wait_for(self.released.wait(), 5)
        finally:
            self.in_flight -= 1
        answer = self.answers.get(str(channel), "allow")
        if answer == "forbid":
            raise Forbidden("no")
        if answer == "down":
            raise Unavailable("no worker")


@dataclass
class FakeRealtime:
    connections: set[FakeConn]
    authorizer: FakeAuthorizer
    policies: Any = field(default_factory=lambda: DEFAULT_POLICIES)
    removed: list[tuple[str, str]] = field(default_factory=list)

    def close_if_revoked(self, conn: FakeConn, command_id: int | None = None) -> bool:
        return False

    async def membership_removed(self, user_id: str, channel: Channel) -> int:
        self.removed.append((user_id, str(channel)))
        return 1


def rechecker(realtime: FakeRealtime, concurrency: int = 16) -> Rechecker:
    return Rechecker(cast(Realtime, realtime), 60.0, concurrency=concurrency)


class TestWhatIsAsked:
    async def test_one_question_per_user_and_members_only_channel(self) -> None:
        """Three sockets of one user on one workspace: one check; user:/public: none."""
        subs = {"workspace:w1": 5, "public:news": 1, "user:u1": 2}
        conns = {FakeConn("u1", dict(subs)) for _ in range(3)}
        conns.add(FakeConn("u2", {"chat:w1": 0}))
        conns.add(FakeConn("u3", {"workspace:w1": 0}, closed=True))
        realtime = FakeRealtime(conns, FakeAuthorizer())
        await rechecker(realtime).run(fresh=True)
        assert sorted(realtime.authorizer.asked) == [
            ("u1", "workspace:w1", True),
            ("u2", "chat:w1", True),
        ]

    async def test_only_the_given_pairs_are_asked_again(self) -> None:
        conns = {FakeConn("u1", {"workspace:w1": 0, "workspace:w2": 0})}
        realtime = FakeRealtime(conns, FakeAuthorizer())
        await rechecker(realtime).run(fresh=False, only={("u1", "workspace:w2")})
        assert realtime.authorizer.asked == [("u1", "workspace:w2", False)]


class TestConcurrency:
    async def test_at_most_the_bound_is_in_flight(self) -> None:
        conns = {FakeConn(f"u{n}", {f"workspace:w{n}": 0}) for n in range(100)}
        realtime = FakeRealtime(conns, FakeAuthorizer(hold=4))
        await rechecker(realtime, concurrency=4).run(fresh=False)
        assert (realtime.authorizer.most, len(realtime.authorizer.asked)) == (4, 100)


class TestAnswers:
    async def test_forbidden_drops_and_an_outage_keeps(self) -> None:
        """Only a definite no drops; what could not be decided is returned, kept."""
        conns = {FakeConn("u1", {"workspace:gone": 0, "workspace:kept": 0, "workspace:down": 0})}
        answers = {"workspace:gone": "forbid", "workspace:down": "down"}
        realtime = FakeRealtime(conns, FakeAuthorizer(answers=answers))
        undecided = await rechecker(realtime).run(fresh=True)
        assert (realtime.removed, undecided) == (
            [("u1", "workspace:gone")],
            {("u1", "workspace:down")},
        )
