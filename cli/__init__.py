"""The operator layer: the `hubbub` command, the supervisor of `hubbub up`, the
embedded PostgreSQL/NATS/Redis and the admin commands. It sits on top of every other
package; nothing below imports it."""
