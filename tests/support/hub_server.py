"""The tests' in-process hubs on the hub's own runner (``hub/serving.py``): a socket's
first request is upgraded as ``hubbub serve`` upgrades it, not by aiohttp's handler."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestServer
from aiohttp.web_runner import BaseRunner

from hub.serving import HubRunner


class HubTestServer(TestServer):
    """aiohttp's ``TestServer``, serving its app through ``HubRunner``."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return HubRunner(self.app, **kwargs)
