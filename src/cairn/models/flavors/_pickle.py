"""Reading and writing pickled model objects, with errors that say what went wrong."""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Any

from cairn.errors import ModelFormatError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["FORMATS", "dump", "load"]

FORMATS = ("cloudpickle", "pickle", "skops")


def dump(obj: Any, path: Path, serialization_format: str) -> None:
    if serialization_format not in FORMATS:
        raise ModelFormatError(
            f"unknown serialization format {serialization_format!r}; use one of {FORMATS}"
        )
    if serialization_format == "skops":
        import skops.io

        skops.io.dump(obj, path)
        return
    with path.open("wb") as out:
        if serialization_format == "cloudpickle":
            import cloudpickle

            cloudpickle.dump(obj, out)
        else:
            pickle.dump(obj, out, protocol=pickle.HIGHEST_PROTOCOL)


def load(path: Path, serialization_format: str, trusted: list[str] | None = None) -> Any:
    """Unpickle a model file. Like any pickle, only load models from sources you trust."""
    if not path.is_file():
        raise ModelFormatError(f"the model file {path.name} is missing from {path.parent}")
    try:
        if serialization_format == "skops":
            try:
                import skops.io
            except ImportError:
                raise ModelFormatError(
                    "this model was saved in skops format; install skops to load it"
                ) from None
            return skops.io.load(path, trusted=trusted)
        with path.open("rb") as handle:
            if serialization_format == "cloudpickle":
                import cloudpickle

                return cloudpickle.load(handle)
            if serialization_format == "pickle":
                return pickle.load(handle)
    except ModelFormatError:
        raise
    except Exception as exc:
        raise ModelFormatError(f"cannot read the model file {path}: {exc}") from exc
    raise ModelFormatError(
        f"unknown serialization format {serialization_format!r}; Cairn reads {FORMATS}"
    )
