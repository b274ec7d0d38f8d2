"""The generic ``python_function`` flavor: every model loads as a ``PyFuncModel``.

``load_model`` reads ``MLmodel``, imports the flavor's loader module and wraps what it returns.
Loader modules written by MLflow (``mlflow.sklearn``, ``mlflow.pyfunc.model``) map onto Cairn's
own, so models saved by MLflow load without MLflow's heavy import.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import TYPE_CHECKING, Any

from cairn.errors import InvalidStateError, ModelFormatError
from cairn.models.mlmodel import PYFUNC_FLAVOR, Model

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

    from cairn.models.mlmodel import ModelInfo
    from cairn.models.signature import ModelSignature, Schema

__all__ = ["FLAVOR_NAME", "PyFuncModel", "load_model", "log_model", "save_model"]

FLAVOR_NAME = PYFUNC_FLAVOR

# MLflow's loader modules and the Cairn modules that read the same files.
_LOADER_ALIASES = {
    "mlflow.sklearn": "cairn.models.flavors.sklearn",
    "mlflow.pyfunc.model": "cairn.models.python_model",
}


class PyFuncModel:
    """A loaded model: ``predict`` checks input against the signature, then scores it."""

    def __init__(self, metadata: Model, impl: Any, path: Path) -> None:
        self.metadata = metadata
        self.path = path
        self._impl = impl
        signature = metadata.signature
        self._input_schema = signature.inputs if signature is not None else None
        try:
            parameters = inspect.signature(impl.predict).parameters
        except (TypeError, ValueError):
            parameters = {}  # type: ignore[assignment]
        self._predict_takes_params = "params" in parameters

    @property
    def input_schema(self) -> Schema | None:
        return self._input_schema

    @property
    def signature(self) -> ModelSignature | None:
        return self.metadata.signature

    @property
    def loader_module(self) -> str:
        return str(self.metadata.flavor(PYFUNC_FLAVOR).get("loader_module"))

    def prepare_input(self, data: Any) -> Any:
        """``data`` checked and converted for the model (raises ``ModelInputError``)."""
        if self._input_schema is not None:
            from cairn.models.enforcement import enforce_schema

            return enforce_schema(data, self._input_schema)
        if isinstance(data, dict | list):
            from cairn.models.enforcement import to_dataframe

            return to_dataframe(data)
        return data

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Predictions for ``data`` (DataFrame, dict of columns, records or array)."""
        prepared = self.prepare_input(data)
        if self._predict_takes_params:
            return self._impl.predict(prepared, params=params)
        return self._impl.predict(prepared)

    @property
    def supports_learning(self) -> bool:
        """True for online models that can learn from labelled rows after deployment."""
        return callable(getattr(self._impl, "learn", None))

    def learn(self, data: Any, targets: Any) -> int:
        """Update an online model with labelled rows; returns how many it learned from."""
        if not self.supports_learning:
            raise InvalidStateError(
                f"this model ({self.loader_module}) cannot learn online; retrain and log a new one"
            )
        learned: int = self._impl.learn(self.prepare_input(data), targets)
        return learned

    def unwrap_python_model(self) -> Any:
        """The user's ``PythonModel`` instance (custom models only)."""
        python_model = getattr(self._impl, "python_model", None)
        if python_model is None:
            raise InvalidStateError("unwrap_python_model() is for custom PythonModel models")
        return python_model

    def get_raw_model(self) -> Any:
        """The flavor's native object (a scikit-learn estimator, a river model, ...)."""
        return getattr(self._impl, "model", self._impl)

    def __repr__(self) -> str:
        return f"PyFuncModel(loader_module={self.loader_module!r}, path={str(self.path)!r})"


def _import_loader(name: str) -> Any:
    target = _LOADER_ALIASES.get(name, name)
    try:
        return importlib.import_module(target)
    except ImportError as exc:
        known = ", ".join(sorted({*_LOADER_ALIASES, *_LOADER_ALIASES.values()}))
        raise ModelFormatError(
            f"cannot load the model: its loader module {name!r} is not importable ({exc}); "
            f"Cairn reads {known}"
        ) from exc


def load_model(
    model_uri: str | os.PathLike[str],
    dst_path: str | os.PathLike[str] | None = None,
) -> PyFuncModel:
    """Load any model with a ``python_function`` flavor from a path or model URI."""
    from cairn.models.uri import download_model, model_folder

    folder = model_folder(download_model(model_uri, dst_path))
    metadata = Model.load(folder)
    conf = metadata.flavors.get(PYFUNC_FLAVOR)
    if conf is None:
        have = ", ".join(sorted(metadata.flavors))
        raise ModelFormatError(
            f"the model at {os.fspath(model_uri)} has no python_function flavor (it has: {have}); "
            "load it with its flavor's load_model"
        )
    loader = conf.get("loader_module")
    if not loader:
        raise ModelFormatError("the python_function flavor names no loader_module")
    if conf.get("code"):
        code = str(folder / conf["code"])
        if code not in sys.path:
            sys.path.insert(0, code)
    module = _import_loader(str(loader))
    data_path = folder / conf["data"] if conf.get("data") else folder
    impl = module._load_pyfunc(str(data_path))
    return PyFuncModel(metadata, impl, folder)


def save_model(
    path: str | os.PathLike[str],
    python_model: Any,
    *,
    artifacts: Mapping[str, str] | None = None,
    code_paths: Iterable[str] | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pip_requirements: Iterable[str] | None = None,
    extra_pip_requirements: Iterable[str] | None = None,
    metadata: dict[str, Any] | None = None,
    mlmodel: Model | None = None,
) -> Model:
    """Save a custom ``PythonModel`` (with its artifacts and code) as a model folder."""
    from cairn.models.environment import pinned
    from cairn.models.packaging import finish_model, prepare_folder
    from cairn.models.python_model import save_python_model

    folder = prepare_folder(path)
    mlmodel = mlmodel or Model()
    save_python_model(folder, mlmodel, python_model, artifacts, code_paths)
    return finish_model(
        folder,
        mlmodel,
        signature=signature,
        input_example=input_example,
        requirements=pinned(["cairn-ml", "cloudpickle", "pandas", "numpy"]),
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        metadata=metadata,
    )


def log_model(
    python_model: Any,
    artifact_path: str = "model",
    *,
    registered_model_name: str | None = None,
    **kwargs: Any,
) -> ModelInfo:
    """Save a custom model into the active run's artifacts (starting a run if none)."""
    from cairn.models.packaging import log_model as log

    return log(
        save_model,
        artifact_path,
        registered_model_name=registered_model_name,
        python_model=python_model,
        **kwargs,
    )


def spark_udf(spark: Any, model_uri: str, result_type: Any = "double", **kwargs: Any) -> Any:
    """A Spark pandas UDF scoring with the model; see ``cairn.models.spark_udf``."""
    from cairn.models.spark_udf import spark_udf as make_udf

    return make_udf(spark, model_uri, result_type=result_type, **kwargs)
