"""The scoring server: serve a model over REST with MLflow's scoring protocol.

``create_scoring_app(model_uri)`` returns a plain ASGI app; ``cairn models serve`` runs it
under uvicorn.
"""

from __future__ import annotations

from cairn.models.serving.app import ScoringApp, create_scoring_app
from cairn.models.serving.settings import ScoringSettings

__all__ = ["ScoringApp", "ScoringSettings", "create_scoring_app"]
