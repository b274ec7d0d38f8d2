"""Custom models: subclass ``PythonModel``, save it with artifacts and code, load it anywhere.

The folder layout and ``MLmodel`` entries are MLflow's (``python_model.pkl``, ``artifacts/``,
``code/``), so a Cairn custom model and an ``mlflow.pyfunc.PythonModel`` load in either tool
where the classes they pickle are importable.
"""

from __future__ import annotations

import inspect
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.errors import ModelFormatError
from cairn.models.mlmodel import PYFUNC_FLAVOR, Model

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["PythonModel", "PythonModelContext", "save_python_model"]

LOADER_MODULE = "cairn.models.python_model"
PICKLE_FILE = "python_model.pkl"
ARTIFACTS_DIR = "artifacts"
CODE_DIR = "code"


@dataclass(frozen=True)
class PythonModelContext:
    """What ``load_context`` and ``predict`` see: local paths of the model's artifacts."""

    artifacts: dict[str, str] = field(default_factory=dict)
    model_config: dict[str, Any] = field(default_factory=dict)


class PythonModel:
    """Base class of custom models: override ``predict`` and, if needed, ``load_context``."""

    def load_context(self, context: PythonModelContext) -> None:
        """Load artifacts (weights, vocabularies) once, before the first prediction."""

    def predict(
        self, context: PythonModelContext, model_input: Any, params: dict[str, Any] | None = None
    ) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement predict()")


def save_python_model(
    path: Path,
    mlmodel: Model,
    python_model: Any,
    artifacts: Mapping[str, str] | None,
    code_paths: Iterable[str] | None,
) -> None:
    """Pickle ``python_model`` and copy its artifacts and code into ``path``; sets the flavor."""
    import cloudpickle

    if not callable(getattr(python_model, "predict", None)):
        raise ModelFormatError("python_model must have a predict() method")
    with (path / PICKLE_FILE).open("wb") as out:
        cloudpickle.dump(python_model, out)
    saved_artifacts: dict[str, dict[str, str]] = {}
    for name, uri in (artifacts or {}).items():
        from cairn.models.uri import download_model

        source = download_model(uri)
        target = path / ARTIFACTS_DIR / source.name
        target.parent.mkdir(exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
        saved_artifacts[name] = {"path": f"{ARTIFACTS_DIR}/{source.name}", "uri": str(uri)}
    conf: dict[str, Any] = {
        "loader_module": LOADER_MODULE,
        "python_model": PICKLE_FILE,
        "cloudpickle_version": cloudpickle.__version__,
        "python_version": ".".join(map(str, sys.version_info[:3])),
    }
    if saved_artifacts:
        conf["artifacts"] = saved_artifacts
    code = copy_code_paths(path, code_paths)
    if code:
        conf["code"] = code
    mlmodel.add_flavor(PYFUNC_FLAVOR, **conf)


def copy_code_paths(path: Path, code_paths: Iterable[str] | None) -> str | None:
    """Copy modules the model imports into ``code/``; added to ``sys.path`` on load."""
    if not code_paths:
        return None
    target = path / CODE_DIR
    target.mkdir(exist_ok=True)
    for item in code_paths:
        source = Path(item)
        if not source.exists():
            raise ModelFormatError(f"code path {item} does not exist")
        if source.is_dir():
            shutil.copytree(source, target / source.name)
        else:
            shutil.copy2(source, target / source.name)
    return CODE_DIR


class _PythonModelWrapper:
    """The pyfunc face of a loaded custom model: ``predict(data, params)``."""

    def __init__(self, python_model: Any, context: PythonModelContext) -> None:
        self.python_model = python_model
        self.context = context
        predict = python_model.predict
        parameters = list(inspect.signature(predict).parameters)
        # MLflow 3 allows predict(model_input, params) without the context argument.
        self._takes_context = bool(parameters) and parameters[0] == "context"
        self._takes_params = "params" in parameters

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        args: list[Any] = [self.context, data] if self._takes_context else [data]
        if self._takes_params:
            return self.python_model.predict(*args, params=params)
        return self.python_model.predict(*args)


def _load_pyfunc(path: str) -> _PythonModelWrapper:
    """Called by ``cairn.pyfunc.load_model`` with the model folder."""
    import cloudpickle

    folder = Path(path)
    conf = Model.load(folder).flavor(PYFUNC_FLAVOR)
    pickled = folder / conf.get("python_model", PICKLE_FILE)
    try:
        with pickled.open("rb") as handle:
            python_model = cloudpickle.load(handle)
    except FileNotFoundError:
        raise ModelFormatError(f"the custom model's {pickled.name} is missing") from None
    except Exception as exc:
        raise ModelFormatError(f"cannot unpickle the custom model in {pickled}: {exc}") from exc
    artifacts = {
        name: str(folder / entry["path"]) for name, entry in (conf.get("artifacts") or {}).items()
    }
    context = PythonModelContext(artifacts, dict(conf.get("config") or {}))
    load_context = getattr(python_model, "load_context", None)
    if callable(load_context):
        try:
            load_context(context)
        except Exception as exc:
            raise ModelFormatError(
                f"the custom model's load_context failed: {type(exc).__name__}: {exc}"
            ) from exc
    return _PythonModelWrapper(python_model, context)
