"""Resources: a workspace's business records (``handlers/resources/service.py``)."""

from __future__ import annotations

from handlers.resources.service import registry

__all__ = ["registry"]
