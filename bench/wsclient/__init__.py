"""Cheap WebSocket load client: many sockets, few cores.

* ``codec`` — the upgrade's keys and masked client frames;
* ``model`` — what crosses process boundaries: ``WSTarget``, ``Script``,
  ``ConnectReport``, ``Snapshot``;
* ``protocol`` — one socket as a raw ``asyncio.Protocol`` (in-place frame parser);
* ``client`` — ``LoadClient``: one process worth of sockets;
* ``pool`` — ``ClientPool``: sockets spread over worker processes.

``bench/wsload.py`` is its command line.
"""

from bench.wsclient.client import LoadClient, raise_nofile
from bench.wsclient.codec import WS_GUID, encode_client_frame
from bench.wsclient.model import ConnectReport, Script, Snapshot, WSTarget
from bench.wsclient.pool import ClientPool
from bench.wsclient.protocol import Stats, WSClientProtocol

__all__ = [
    "WS_GUID",
    "ClientPool",
    "ConnectReport",
    "LoadClient",
    "Script",
    "Snapshot",
    "Stats",
    "WSClientProtocol",
    "WSTarget",
    "encode_client_frame",
    "raise_nofile",
]
