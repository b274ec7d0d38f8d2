"""``cairn.pyfunc``: load any model as a ``PyFuncModel``; save and log custom models."""

from __future__ import annotations

from cairn.models.pyfunc import (
    FLAVOR_NAME,
    PyFuncModel,
    load_model,
    log_model,
    save_model,
    spark_udf,
)
from cairn.models.python_model import PythonModel, PythonModelContext

__all__ = [
    "FLAVOR_NAME",
    "PyFuncModel",
    "PythonModel",
    "PythonModelContext",
    "load_model",
    "log_model",
    "save_model",
    "spark_udf",
]
