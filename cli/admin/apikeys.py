"""``hubbub apikey create/list/revoke``: service API keys, straight against the database.

A revocation is also told to every hub (``hubbub.contracts.key_control``), which would
otherwise take the key for as long as it remembers its check; the command connects to
NATS for that as a worker does (``with_running_system`` gives it a worker's credentials
for an embedded NATS).
"""

from __future__ import annotations

import sys
from typing import TextIO

from cli.admin import command_nats, database, refuse
from hubbub.config import Settings
from hubbub.contracts.key_control import API_KEY_CACHE_S


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
                untold = await tell_hubs(settings, key.key_hash)
                if untold is None:
                    print(f"revoked {key.name!r}; every hub has been told", file=out)
                else:
                    print(
                        f"revoked {key.name!r}; the hubs could not be told ({untold}): "
                        f"they stop taking it within {API_KEY_CACHE_S:g} s",
                        file=out,
                    )
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


async def tell_hubs(settings: Settings, key_hash: str) -> str | None:
    """Publish that the key with digest ``key_hash`` is revoked; None once the NATS
    server has the message, else why it could not be sent."""
    from hubbub.contracts.key_control import ApiKeyRevoked, api_key_revocations
    from hubbub.contracts.subjects import Subjects
    from hubbub.nats_barrier import server_has_read
    from hubbub.natsconn import NatsUnavailable, describe_error

    if not settings.nats_url:
        return "NATS_URL is not set"
    try:
        nc = await command_nats(settings, "hubbub-apikey")
    except NatsUnavailable as exc:
        return f"NATS: {exc}"
    except Exception as exc:
        return f"NATS: {describe_error(exc)}"
    try:
        message = ApiKeyRevoked(key_hash=key_hash).model_dump_json().encode()
        await nc.publish(api_key_revocations(Subjects(settings.namespace)), message)
        await server_has_read(nc)
        # A publish the server refuses is answered -ERR, before the barrier's PONG.
        if nc.last_error is not None and "permissions violation" in str(nc.last_error).lower():
            return f"NATS refused the publish: {nc.last_error}"
    except Exception as exc:
        return f"NATS: {exc or type(exc).__name__}"
    finally:
        await nc.close()
    return None
