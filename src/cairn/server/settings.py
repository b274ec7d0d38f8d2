"""Explicit server settings: everything the app factory needs, nothing read from globals."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ServerSettings"]

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """How a tracking server is configured.

    Args:
        backend_store_uri: the tracking store (a folder, ``sqlite:///``, ``postgresql://``).
        artifacts_destination: where proxied artifacts live; defaults to the store's root.
        serve_artifacts: hand out ``mlflow-artifacts:`` locations and proxy artifact traffic,
            so clients never touch the artifact store directly.
        max_request_bytes: largest JSON API body accepted (larger → 413).
        max_upload_bytes: largest artifact upload accepted (larger → 413).
    """

    backend_store_uri: str = ".cairn"
    artifacts_destination: str | None = None
    serve_artifacts: bool = True
    max_request_bytes: int = 16 * MiB
    max_upload_bytes: int = 5 * 1024 * MiB
