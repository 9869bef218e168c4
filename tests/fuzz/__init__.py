"""Schemathesis against a running Hubbub: ``python -m tests.fuzz`` (``make fuzz``)."""
