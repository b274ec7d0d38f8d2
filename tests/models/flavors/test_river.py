from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import pytest
from river import forest, linear_model, preprocessing

import cairn
import cairn.pyfunc
import cairn.river
from cairn.errors import ModelFormatError, ModelInputError

if TYPE_CHECKING:
    from pathlib import Path

ROWS = pd.DataFrame({"x": [0.1, 0.9, 0.2, 0.8] * 10, "y": [1.0, 0.0, 1.0, 0.0] * 10})
LABELS = [False, True, False, True] * 10


def _trained_forest() -> forest.ARFClassifier:
    model = forest.ARFClassifier(n_models=3, seed=7)
    for row, label in zip(ROWS.to_dict(orient="records"), LABELS, strict=True):
        model.learn_one(row, label)
    return model


def test_adaptive_random_forest_round_trip(tmp_path: Path) -> None:
    model = _trained_forest()
    saved = cairn.river.save_model(model, tmp_path / "m", input_example=ROWS[:3])
    assert saved.flavors["river"]["online"] is True
    loaded = cairn.pyfunc.load_model(tmp_path / "m")
    expected = [model.predict_one(row) for row in ROWS.to_dict(orient="records")]
    assert loaded.predict(ROWS).tolist() == expected
    assert isinstance(cairn.river.load_model(tmp_path / "m"), forest.ARFClassifier)


def test_served_online_model_learns_from_feedback(tmp_path: Path) -> None:
    model = preprocessing.StandardScaler() | linear_model.LinearRegression(intercept_lr=0.5)
    model.learn_one({"x": 0.0}, 0.0)
    cairn.river.save_model(model, tmp_path / "m", input_example=pd.DataFrame({"x": [1.0]}))
    loaded = cairn.pyfunc.load_model(tmp_path / "m")
    assert loaded.supports_learning
    before = loaded.predict(pd.DataFrame({"x": [2.0]}))[0]
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0] * 30})
    assert loaded.learn(frame, [10.0, 20.0, 30.0] * 30) == 90
    after = loaded.predict(pd.DataFrame({"x": [2.0]}))[0]
    assert abs(after - 20.0) < abs(before - 20.0)
    with pytest.raises(ModelInputError, match="3 rows but 2 targets"):
        loaded.learn(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), [1.0, 2.0])


def test_log_model_and_signature(tmp_path: Path) -> None:
    with cairn.start_run() as run:
        info = cairn.river.log_model(_trained_forest(), "online", input_example=ROWS[:2])
    loaded = cairn.pyfunc.load_model(f"runs:/{run.info.run_id}/online")
    assert info.signature is not None and info.signature.inputs.names() == ["x", "y"]
    with pytest.raises(ModelInputError, match="column 'y': missing"):
        loaded.predict(pd.DataFrame({"x": [0.5]}))


def test_non_river_objects_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match="not a river model"):
        cairn.river.save_model(object(), tmp_path / "m")
