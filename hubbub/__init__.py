"""Hubbub: a real-time backend — aiohttp hub, NATS worker actors, PostgreSQL, Redis."""

__version__ = "0.1.0"
