"""``GET /metrics`` on the admin listener (hub/admin.py), never the public one:
Prometheus text format, counters of this hub process."""

from __future__ import annotations

from collections import Counter

from aiohttp import web

from hub.state import HUB_APP, REALTIME
from hub.ws.connection import counters

# Requests by status class, kept by the request_context middleware.
http_requests: Counter[str] = Counter()


def _line(name: str, value: float, help_text: str, kind: str = "gauge", labels: str = "") -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n{name}{labels} {value}\n"


async def metrics(request: web.Request) -> web.Response:
    realtime = request.app[HUB_APP][REALTIME]
    connections = realtime.connections
    out = [
        _line("hubbub_ws_connections", len(connections), "Open, connected sockets."),
        _line(
            "hubbub_ws_subscriptions",
            sum(len(c.subs) for c in connections),
            "Channel subscriptions of open sockets.",
        ),
        _line("hubbub_ws_feeds", len(realtime.fanout.feeds), "Channels with local subscribers."),
        _line(
            "hubbub_ws_connects_total", realtime.stats["connects"], "Accepted connects.", "counter"
        ),
        _line(
            "hubbub_ws_dropped_publications_total",
            counters["dropped"],
            "Publications dropped for slow consumers (drop-oldest, conflate).",
            "counter",
        ),
        _line(
            "hubbub_ws_slow_consumer_closes_total",
            counters["slow_closed"],
            "Sockets closed with 4009.",
            "counter",
        ),
        _line(
            "hubbub_ws_invalid_publications_total",
            sum(f.dropped_invalid for f in realtime.fanout.feeds.values()),
            "Publications that were not JSON objects (dropped).",
            "counter",
        ),
    ]
    out.append("# HELP hubbub_http_requests_total HTTP requests by status class.\n")
    out.append("# TYPE hubbub_http_requests_total counter\n")
    for status, count in sorted(http_requests.items()):
        out.append(f'hubbub_http_requests_total{{status="{status}"}} {count}\n')
    return web.Response(text="".join(out), content_type="text/plain", charset="utf-8")
