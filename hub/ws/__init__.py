"""The WebSocket side of the hub: ``/ws``, channels, fan-out, recovery, presence."""
