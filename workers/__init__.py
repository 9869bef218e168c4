"""Worker processes: the actor runtime that runs handlers for requests from NATS."""
