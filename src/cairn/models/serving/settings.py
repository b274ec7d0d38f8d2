"""Explicit scoring-server settings: everything the app factory needs, nothing from globals."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MiB", "ScoringSettings"]

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ScoringSettings:
    """How a scoring server is configured.

    Args:
        max_request_bytes: largest request body accepted (larger → 413).
        timeout_seconds: how long one request may wait for the model (longer → 504).
        micro_batching: score small requests that queue up while the model is busy in one
            call, for models whose predictions are row by row (scikit-learn, river).
        warm_up: score the model's input example (or a row built from its signature) before
            the server answers, so the first request costs what later ones do.
    """

    max_request_bytes: int = 64 * MiB
    timeout_seconds: float = 60.0
    micro_batching: bool = True
    warm_up: bool = True
