"""Request pieces shared by routes: tag lists and the MLflow API prefix."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["API", "Empty", "KeyValue", "Request"]

API = "/api/2.0/mlflow"


class Request(BaseModel):
    """Base of request bodies: unknown fields are ignored, as MLflow's server does."""

    model_config = ConfigDict(extra="ignore")


class KeyValue(Request):
    key: str
    value: str = ""


class Empty(BaseModel):
    pass
