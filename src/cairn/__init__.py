"""Cairn: record, compare and reproduce every step of a model's life.

``import cairn`` is light: names resolve lazily on first use, so heavy libraries (SQLAlchemy,
pandas, fsspec) load only when a feature needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "ActiveRun",
    "TrackingClient",
    "__version__",
    "active_run",
    "create_experiment",
    "delete_tag",
    "download_artifacts",
    "end_run",
    "flush",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_run",
    "get_tracking_uri",
    "list_artifacts",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "register_model",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]

_LAZY: dict[str, str] = {
    name: "cairn.tracking.fluent"
    for name in __all__
    if name not in ("TrackingClient", "__version__", "log_input", "register_model")
}
_LAZY["log_input"] = "cairn.data.lineage"
_LAZY["TrackingClient"] = "cairn.tracking.client"
_LAZY["register_model"] = "cairn.models.registry.fluent"

if TYPE_CHECKING:
    from cairn.data.lineage import log_input
    from cairn.models.registry.fluent import register_model
    from cairn.tracking.client import TrackingClient
    from cairn.tracking.fluent import (
        ActiveRun,
        active_run,
        create_experiment,
        delete_tag,
        download_artifacts,
        end_run,
        flush,
        get_artifact_uri,
        get_experiment,
        get_experiment_by_name,
        get_run,
        get_tracking_uri,
        list_artifacts,
        log_artifact,
        log_artifacts,
        log_dict,
        log_figure,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
        search_runs,
        set_experiment,
        set_tag,
        set_tags,
        set_tracking_uri,
        start_run,
    )


# Flavor modules resolve as attributes too, so ``cairn.sklearn.log_model(...)`` works after a
# bare ``import cairn`` the way MLflow users write it.
_SUBMODULES = frozenset({"data", "models", "pyfunc", "river", "sklearn"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        submodule = importlib.import_module(f"cairn.{name}")
        globals()[name] = submodule
        return submodule
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cairn' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
