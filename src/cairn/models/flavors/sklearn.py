"""The scikit-learn flavor.

Files and ``MLmodel`` entries follow MLflow's ``sklearn`` flavor, and the ``python_function``
entry names ``mlflow.sklearn`` as loader: the folder then loads with ``mlflow.pyfunc`` on a
machine without Cairn, while Cairn maps that loader onto this module.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.errors import ModelFormatError
from cairn.models.mlmodel import PYFUNC_FLAVOR, Model

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable

    from cairn.models.mlmodel import ModelInfo
    from cairn.models.signature import ModelSignature

__all__ = ["FLAVOR_NAME", "load_model", "log_model", "save_model"]

FLAVOR_NAME = "sklearn"
_LOADER_MODULE = "mlflow.sklearn"
_EXTENSIONS = {"cloudpickle": "model.pkl", "pickle": "model.pkl", "skops": "model.skops"}


def save_model(
    sk_model: Any,
    path: str | os.PathLike[str],
    *,
    serialization_format: str = "cloudpickle",
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pyfunc_predict_fn: str = "predict",
    pip_requirements: Iterable[str] | None = None,
    extra_pip_requirements: Iterable[str] | None = None,
    metadata: dict[str, Any] | None = None,
    mlmodel: Model | None = None,
) -> Model:
    """Write ``sk_model`` as a model folder at ``path``; returns its ``MLmodel``."""
    import sklearn

    from cairn.models.environment import pinned
    from cairn.models.flavors import _pickle
    from cairn.models.packaging import finish_model, prepare_folder

    predict = getattr(sk_model, pyfunc_predict_fn, None)
    if not callable(predict):
        raise ModelFormatError(
            f"{type(sk_model).__name__} has no {pyfunc_predict_fn}() method to serve"
        )
    if serialization_format not in _EXTENSIONS:
        raise ModelFormatError(
            f"unknown serialization format {serialization_format!r}; "
            f"use one of {', '.join(_EXTENSIONS)}"
        )
    folder = prepare_folder(path)
    filename = _EXTENSIONS[serialization_format]
    _pickle.dump(sk_model, folder / filename, serialization_format)
    mlmodel = mlmodel or Model()
    mlmodel.add_flavor(
        PYFUNC_FLAVOR,
        loader_module=_LOADER_MODULE,
        model_path=filename,
        predict_fn=pyfunc_predict_fn,
        python_version=".".join(map(str, sys.version_info[:3])),
    )
    mlmodel.add_flavor(
        FLAVOR_NAME,
        pickled_model=filename,
        sklearn_version=sklearn.__version__,
        serialization_format=serialization_format,
        code=None,
    )
    requirements = ["scikit-learn", "numpy", "pandas", "scipy"]
    requirements.append("skops" if serialization_format == "skops" else "cloudpickle")
    return finish_model(
        folder,
        mlmodel,
        signature=signature,
        input_example=input_example,
        requirements=pinned(requirements),
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        predict=predict,
        metadata=metadata,
    )


def log_model(
    sk_model: Any,
    artifact_path: str = "model",
    *,
    registered_model_name: str | None = None,
    **kwargs: Any,
) -> ModelInfo:
    """Save ``sk_model`` into the active run (started if none): ``runs:/<id>/<artifact_path>``."""
    from cairn.models.packaging import log_model as log

    return log(
        lambda path, **kw: save_model(sk_model, path, **kw),
        artifact_path,
        registered_model_name=registered_model_name,
        **kwargs,
    )


def _read(folder: Path) -> tuple[Any, dict[str, Any]]:
    from cairn.models.flavors import _pickle

    metadata = Model.load(folder)
    conf = metadata.flavor(FLAVOR_NAME)
    filename = conf.get("pickled_model") or metadata.flavor(PYFUNC_FLAVOR).get("model_path")
    if not filename:
        raise ModelFormatError("the sklearn flavor names no pickled_model file")
    model = _pickle.load(
        folder / filename,
        str(conf.get("serialization_format") or "pickle"),
        conf.get("skops_trusted_types"),
    )
    return model, metadata.flavors.get(PYFUNC_FLAVOR) or {}


def load_model(model_uri: str | os.PathLike[str], dst_path: str | None = None) -> Any:
    """The scikit-learn estimator saved at ``model_uri``."""
    from cairn.models.uri import download_model, model_folder

    model, _ = _read(model_folder(download_model(model_uri, dst_path)))
    return model


class _SklearnWrapper:
    def __init__(self, model: Any, predict_fn: str) -> None:
        self.model = model
        method = getattr(model, predict_fn, None)
        if not callable(method):
            raise ModelFormatError(f"{type(model).__name__} has no {predict_fn}() method")
        self._predict = method

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        return self._predict(data)


def _load_pyfunc(path: str) -> _SklearnWrapper:
    """Called by ``cairn.pyfunc.load_model``; ``path`` is the folder (or the pickled file)."""
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    model, pyfunc_conf = _read(folder)
    return _SklearnWrapper(model, str(pyfunc_conf.get("predict_fn") or "predict"))
