"""The model registry: named models, numbered versions, tags and aliases such as ``champion``.

It lives beside the tracking data: in the same database, or behind the same tracking server.
"""

from __future__ import annotations

from cairn.models.registry.client import RegistryClient
from cairn.models.registry.fluent import register_model

__all__ = ["RegistryClient", "register_model"]
