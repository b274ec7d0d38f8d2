"""The river flavor: online models that keep learning after they are deployed.

River models score and learn one row (a dict) at a time; some also take whole DataFrames
(``predict_many``/``learn_many``). The pyfunc wrapper uses the batch methods when the model has
them and falls back to row by row, and serializes learning and scoring with a lock because a
served model is shared by concurrent requests.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.errors import ModelFormatError, ModelInputError
from cairn.models.mlmodel import PYFUNC_FLAVOR, Model

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable

    from cairn.models.mlmodel import ModelInfo
    from cairn.models.signature import ModelSignature

__all__ = ["FLAVOR_NAME", "load_model", "log_model", "save_model"]

FLAVOR_NAME = "river"
_LOADER_MODULE = "cairn.models.flavors.river"
_MODEL_FILE = "model.pkl"


def save_model(
    river_model: Any,
    path: str | os.PathLike[str],
    *,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pip_requirements: Iterable[str] | None = None,
    extra_pip_requirements: Iterable[str] | None = None,
    metadata: dict[str, Any] | None = None,
    mlmodel: Model | None = None,
) -> Model:
    """Write a river model (estimator or pipeline) as a model folder at ``path``."""
    import river

    from cairn.models.environment import pinned
    from cairn.models.flavors import _pickle
    from cairn.models.packaging import finish_model, prepare_folder

    if not callable(getattr(river_model, "predict_one", None)):
        raise ModelFormatError(
            f"{type(river_model).__name__} is not a river model (no predict_one)"
        )
    folder = prepare_folder(path)
    _pickle.dump(river_model, folder / _MODEL_FILE, "cloudpickle")
    mlmodel = mlmodel or Model()
    mlmodel.add_flavor(
        PYFUNC_FLAVOR,
        loader_module=_LOADER_MODULE,
        model_path=_MODEL_FILE,
        python_version=".".join(map(str, sys.version_info[:3])),
    )
    mlmodel.add_flavor(
        FLAVOR_NAME,
        pickled_model=_MODEL_FILE,
        river_version=getattr(river, "__version__", "unknown"),
        serialization_format="cloudpickle",
        online=True,
    )
    wrapper = _RiverWrapper(river_model)
    return finish_model(
        folder,
        mlmodel,
        signature=signature,
        input_example=input_example,
        requirements=pinned(["cairn-ml", "river", "cloudpickle", "pandas", "numpy"]),
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        predict=wrapper.predict,
        metadata=metadata,
    )


def log_model(
    river_model: Any,
    artifact_path: str = "model",
    *,
    registered_model_name: str | None = None,
    **kwargs: Any,
) -> ModelInfo:
    """Save a river model into the active run (started if none)."""
    from cairn.models.packaging import log_model as log

    return log(
        lambda path, **kw: save_model(river_model, path, **kw),
        artifact_path,
        registered_model_name=registered_model_name,
        **kwargs,
    )


def _read(folder: Path) -> Any:
    from cairn.models.flavors import _pickle

    conf = Model.load(folder).flavor(FLAVOR_NAME)
    return _pickle.load(
        folder / str(conf.get("pickled_model") or _MODEL_FILE),
        str(conf.get("serialization_format") or "cloudpickle"),
    )


def load_model(model_uri: str | os.PathLike[str], dst_path: str | None = None) -> Any:
    """The river model saved at ``model_uri``."""
    from cairn.models.uri import download_model, model_folder

    return _read(model_folder(download_model(model_uri, dst_path)))


class _RiverWrapper:
    def __init__(self, model: Any) -> None:
        self.model = model
        self._lock = threading.Lock()

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        import numpy as np
        import pandas as pd

        frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
        with self._lock:
            many = getattr(self.model, "predict_many", None)
            if callable(many):
                return np.asarray(many(frame))
            predict_one = self.model.predict_one
            return np.asarray([predict_one(row) for row in frame.to_dict(orient="records")])

    def learn(self, data: Any, targets: Any) -> int:
        import pandas as pd

        frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
        labels = pd.Series(list(targets) if not isinstance(targets, pd.Series) else targets)
        if len(labels) != len(frame):
            raise ModelInputError(
                f"got {len(frame)} rows but {len(labels)} targets; send one target per row"
            )
        with self._lock:
            many = getattr(self.model, "learn_many", None)
            if callable(many):
                many(frame.reset_index(drop=True), labels.reset_index(drop=True))
            else:
                learn_one = self.model.learn_one
                for row, label in zip(frame.to_dict(orient="records"), labels, strict=True):
                    learn_one(row, label)
        return len(frame)


def _load_pyfunc(path: str) -> _RiverWrapper:
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    return _RiverWrapper(_read(folder))
