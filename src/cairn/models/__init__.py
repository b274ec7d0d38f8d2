"""Models: the MLmodel format, signatures, the pyfunc flavor, flavors and the registry.

Names load lazily so ``import cairn.models`` costs nothing until a model is touched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "ColSpec",
    "DataType",
    "Model",
    "ModelInfo",
    "ModelSignature",
    "Schema",
    "TensorSpec",
    "infer_signature",
]

_LAZY = {
    "ColSpec": "cairn.models.signature",
    "DataType": "cairn.models.signature",
    "ModelSignature": "cairn.models.signature",
    "Schema": "cairn.models.signature",
    "TensorSpec": "cairn.models.signature",
    "infer_signature": "cairn.models.signature",
    "Model": "cairn.models.mlmodel",
    "ModelInfo": "cairn.models.mlmodel",
}

if TYPE_CHECKING:
    from cairn.models.mlmodel import Model, ModelInfo
    from cairn.models.signature import (
        ColSpec,
        DataType,
        ModelSignature,
        Schema,
        TensorSpec,
        infer_signature,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cairn.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
