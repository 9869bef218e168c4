"""``hubbub apikey create/list/revoke``: service API keys, straight against the database."""

from __future__ import annotations

import sys
from typing import TextIO

from cli.admin import database, refuse
from hubbub.config import Settings


async def manage_keys(
    settings: Settings,
    action: str,
    *,
    name: str | None = None,
    channels: list[str] | None = None,
    out: TextIO = sys.stdout,
) -> int:
    from handlers.apikeys import create_key, list_keys, revoke_key
    from hubbub.contracts.errors import HubbubError

    async with database(settings) as session:
        try:
            if action == "create":
                assert name is not None
                key, plain = await create_key(session, name, channels or [])
                await session.commit()
                print(f"created API key {key.name!r} for {', '.join(key.channels)}", file=out)
                print(f"key (shown once, keep it secret): {plain}", file=out)
            elif action == "revoke":
                assert name is not None
                key = await revoke_key(session, name)
                await session.commit()
                print(f"revoked {key.name!r} (hubs forget it within 30 s)", file=out)
            else:
                keys = await list_keys(session)
                if not keys:
                    print("no API keys", file=out)
                for key in keys:
                    state = "revoked" if key.revoked_at else "active"
                    used = (
                        key.last_used_at.isoformat(timespec="seconds")
                        if key.last_used_at
                        else "never"
                    )
                    print(
                        f"{key.name:<24} {key.prefix}…  {state:<8} last used {used:<25} "
                        f"{' '.join(key.channels)}",
                        file=out,
                    )
        except HubbubError as exc:
            return refuse(exc.message)
    return 0
