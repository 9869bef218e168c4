"""Redis key names, all under one prefix (``hb:`` plus the namespace)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RedisKeys:
    namespace: str = ""

    @property
    def prefix(self) -> str:
        return f"hb:{self.namespace}:" if self.namespace else "hb:"

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def channel_acl(self, user_id: str, channel: str, action: str) -> str:
        """Cached answer of channels.authorize: b"1" or b"0". Workers write it (with a
        TTL) and delete a user's keys for a channel when their membership changes."""
        return self.key("acl", user_id, channel, action)

    def channel_acl_pattern(self, user_id: str, channel: str) -> str:
        """Both actions' cached answers of one user on one channel (for SCAN/DEL)."""
        return self.key("acl", user_id, channel, "*")

    def presence(self, channel: str) -> str:
        return self.key("presence", channel)

    def presence_info(self, channel: str) -> str:
        return self.key("presence", channel, "info")

    def presence_swept(self, channel: str) -> str:
        """The channel's leaves a sweep took out, owed until their hub announced them."""
        return self.key("presence", channel, "swept")

    def presence_claims(self, channel: str) -> str:
        """Which hub announces each owed leave, and until when."""
        return self.key("presence", channel, "claims")

    def presence_returned(self, channel: str, hub: str) -> str:
        """The members ``hub``'s renewals found gone and put back, owed a ``joined``."""
        return self.key("presence", channel, "returned", hub)
