"""``cairn.river``: save, log and load river (online learning) models."""

from __future__ import annotations

from cairn.models.flavors.river import FLAVOR_NAME, load_model, log_model, save_model

__all__ = ["FLAVOR_NAME", "load_model", "log_model", "save_model"]
