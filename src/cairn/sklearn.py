"""``cairn.sklearn``: save, log and load scikit-learn models."""

from __future__ import annotations

from cairn.models.flavors.sklearn import FLAVOR_NAME, load_model, log_model, save_model

__all__ = ["FLAVOR_NAME", "load_model", "log_model", "save_model"]
