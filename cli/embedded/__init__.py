"""Embedded servers for the zero-setup default (`hubbub up`) and the test suite."""

from cli.embedded.servers import EmbeddedNats, EmbeddedPostgres, EmbeddedRedis

__all__ = ["EmbeddedNats", "EmbeddedPostgres", "EmbeddedRedis"]
