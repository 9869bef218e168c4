"""Contracts shared by the hub, the workers and the handlers: no I/O, no DB, no sockets."""
