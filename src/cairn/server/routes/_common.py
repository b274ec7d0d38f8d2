"""Request pieces shared by routes: tag lists and the MLflow API prefix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict

__all__ = ["API", "JSONRoute", "KeyValue", "Request"]

API = "/api/2.0/mlflow"


class Request(BaseModel):
    """Base of request bodies: unknown fields are ignored, as MLflow's server does."""

    model_config = ConfigDict(extra="ignore")


class KeyValue(Request):
    key: str
    value: str = ""


class JSONRoute(APIRoute):
    """A route whose return value goes straight to orjson: no response model inferred from
    the ``-> dict[str, Any]`` annotation, which would re-validate every response (milliseconds
    on a search page)."""

    def __init__(
        self, path: str, endpoint: Callable[..., Any], *, response_model: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(path, endpoint, response_model=response_model, **kwargs)
