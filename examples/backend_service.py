"""A backend service that pushes to browsers through Hubbub — both ways.

1. Over HTTP, with a service API key (``hubbub apikey create billing --channel public:*``)::

       python examples/backend_service.py http --hub http://127.0.0.1:8080 \\
           --key hbk_… --channel public:news --text "hello"

2. Straight onto NATS, for services inside the deployment, with a NATS credential
   (``hubbub service create news --channel public:*`` prints it: a user, a password and
   the inbox prefix the service must use). Publish a JSON object on
   ``evt.<kind>.<name>`` (with the namespace prefix if ``HUBBUB_NAMESPACE`` is set); the
   NATS server lets the service publish on its granted channels only. JetStream keeps it
   as channel history and every hub with a subscriber delivers it::

       python examples/backend_service.py nats --nats nats://127.0.0.1:4222 \\
           --user svc-news --password … --inbox-prefix _SVC.news \\
           --channel public:news --text "hello"

   (Against a NATS without authentication, leave out the three credential options.)

Either way, subscribers of the channel get ``{"push": "pub", "channel": …, "offset": …,
"data": {"text": "hello", …}}``. Uses only aiohttp and nats-py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import aiohttp
import nats


async def publish_over_http(
    hub: str, key: str, channel: str, data: dict[str, Any], *, message_id: str | None = None
) -> dict[str, Any]:
    """POST /api/v1/channels/{channel}/publish; returns {"channel", "offset", "duplicate"}.
    A ``message_id`` makes a retry land once."""
    body: dict[str, Any] = {"data": data}
    if message_id is not None:
        body["id"] = message_id
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{hub.rstrip('/')}/api/v1/channels/{channel}/publish",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
        ) as response,
    ):
        result: dict[str, Any] = await response.json(content_type=None)
        if response.status != 200:
            raise RuntimeError(f"{response.status} {result.get('code')}: {result.get('detail')}")
        return result


def subject_of(channel: str, namespace: str = "") -> str:
    """``public:news`` → ``evt.public.news`` (``<ns>.evt.public.news`` in a namespace)."""
    kind, _, name = channel.partition(":")
    return f"{namespace + '.' if namespace else ''}evt.{kind}.{name}"


async def publish_over_nats(
    nats_url: str,
    channel: str,
    data: dict[str, Any],
    *,
    namespace: str = "",
    user: str | None = None,
    password: str | None = None,
    inbox_prefix: str | None = None,
) -> int:
    """Publish on the channel's subject through JetStream; returns the offset.

    ``user``/``password``: the service's NATS credential; ``inbox_prefix``: where the
    JetStream ack comes back (the only inbox the service may subscribe to)."""
    credentials: dict[str, Any] = {}
    if user is not None:
        credentials = {"user": user, "password": password or ""}
    if inbox_prefix is not None:
        credentials["inbox_prefix"] = inbox_prefix
    # On a NATS cluster the URL lists its servers, comma-separated: nats-py takes a list.
    servers = [url.strip() for url in nats_url.split(",") if url.strip()]
    nc = await nats.connect(servers, **credentials)
    try:
        ack = await nc.jetstream().publish(
            subject_of(channel, namespace), json.dumps(data).encode()
        )
        return int(ack.seq)
    finally:
        await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="how", required=True)
    http = sub.add_parser("http")
    http.add_argument("--hub", required=True)
    http.add_argument("--key", required=True)
    over_nats = sub.add_parser("nats")
    over_nats.add_argument("--nats", required=True)
    over_nats.add_argument("--namespace", default="")
    over_nats.add_argument("--user", default=None)
    over_nats.add_argument("--password", default=None)
    over_nats.add_argument("--inbox-prefix", default=None)
    for p in (http, over_nats):
        p.add_argument("--channel", required=True)
        p.add_argument("--text", required=True)
    args = parser.parse_args()
    data = {"text": args.text, "sent_at": time.time()}
    if args.how == "http":
        print(asyncio.run(publish_over_http(args.hub, args.key, args.channel, data)))
    else:
        print(
            {
                "offset": asyncio.run(
                    publish_over_nats(
                        args.nats,
                        args.channel,
                        data,
                        namespace=args.namespace,
                        user=args.user,
                        password=args.password,
                        inbox_prefix=args.inbox_prefix,
                    )
                )
            }
        )


if __name__ == "__main__":
    main()
