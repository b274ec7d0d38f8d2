"""Input examples saved beside a model, in the layout MLflow uses.

``input_example.json`` holds the example (a DataFrame in ``split`` orient, or an array under
``inputs``); ``serving_input_example.json`` holds the same example as a ready-to-send
``/invocations`` body.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from cairn.errors import ModelFormatError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["EXAMPLE_FILE", "SERVING_EXAMPLE_FILE", "load_input_example", "save_input_example"]

EXAMPLE_FILE = "input_example.json"
SERVING_EXAMPLE_FILE = "serving_input_example.json"


def normalize_example(example: Any) -> Any:
    """A DataFrame for tabular examples, an ndarray for arrays."""
    import numpy as np
    import pandas as pd

    if isinstance(example, pd.DataFrame | np.ndarray):
        return example
    if isinstance(example, pd.Series):
        return example.to_frame()
    if isinstance(example, dict) or (
        isinstance(example, list) and example and isinstance(example[0], dict)
    ):
        from cairn.models.enforcement import to_dataframe

        return to_dataframe(example)
    if isinstance(example, list):
        return np.asarray(example)
    raise ModelFormatError(
        f"cannot save an input example of type {type(example).__name__}; "
        "pass a DataFrame, a dict of columns, a list of records or an array"
    )


def save_input_example(path: Path, example: Any) -> dict[str, Any]:
    """Write the example files into ``path``; returns ``saved_input_example_info``."""
    import numpy as np

    example = normalize_example(example)
    if isinstance(example, np.ndarray):
        body: dict[str, Any] = {"inputs": example.tolist()}
        (path / EXAMPLE_FILE).write_text(json.dumps(body))
        (path / SERVING_EXAMPLE_FILE).write_text(json.dumps(body, indent=2))
        return {
            "artifact_path": EXAMPLE_FILE,
            "type": "ndarray",
            "format": "tf-serving",
            "serving_input_path": SERVING_EXAMPLE_FILE,
        }
    split = json.loads(example.to_json(orient="split", index=False, date_format="iso"))
    (path / EXAMPLE_FILE).write_text(json.dumps(split))
    (path / SERVING_EXAMPLE_FILE).write_text(json.dumps({"dataframe_split": split}, indent=2))
    return {
        "artifact_path": EXAMPLE_FILE,
        "type": "dataframe",
        "pandas_orient": "split",
        "serving_input_path": SERVING_EXAMPLE_FILE,
    }


def load_input_example(path: Path, info: dict[str, Any] | None) -> Any:
    """The saved example as a DataFrame or ndarray, or None when the model has none."""
    import numpy as np
    import pandas as pd

    if not info:
        return None
    try:
        body = json.loads((path / info["artifact_path"]).read_text())
    except (OSError, KeyError, ValueError) as exc:
        raise ModelFormatError(f"the model's input example cannot be read: {exc}") from exc
    if info.get("type") == "ndarray":
        return np.asarray(body["inputs"] if isinstance(body, dict) else body)
    return pd.DataFrame(body["data"], columns=body["columns"])
