from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import yaml

from cairn.errors import ModelFormatError
from cairn.models.mlmodel import Model
from cairn.models.signature import infer_signature

if TYPE_CHECKING:
    from pathlib import Path


def test_round_trip_keeps_fields_and_unknown_keys(tmp_path: Path) -> None:
    model = Model(run_id="abc", artifact_path="model")
    model.add_flavor("python_function", loader_module="x.y")
    model.signature = infer_signature({"a": [1.0]})
    model.extra["mlflow_version"] = "3.1.0"
    model.save(tmp_path)
    data = yaml.safe_load((tmp_path / "MLmodel").read_text())
    assert {"flavors", "run_id", "model_uuid", "utc_time_created", "cairn_version"} <= set(data)
    loaded = Model.load(tmp_path)
    assert loaded.run_id == "abc" and loaded.model_uuid == model.model_uuid
    assert loaded.signature == model.signature
    assert loaded.extra == {"mlflow_version": "3.1.0"}
    assert loaded.flavor("python_function") == {"loader_module": "x.y"}


def test_missing_flavor_lists_what_the_model_has(tmp_path: Path) -> None:
    model = Model().add_flavor("sklearn", pickled_model="m.pkl")
    with pytest.raises(ModelFormatError, match=r"no 'river' flavor \(it has: sklearn\)"):
        model.flavor("river")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no MLmodel file"),
        ("flavors: [unclosed", "not valid YAML"),
        ("- a list", "not a YAML mapping"),
        ("run_id: x", "lists no flavors"),
        ("flavors: {python_function: {}}\nsignature: {outputs: x}", "no 'inputs'"),
    ],
)
def test_missing_or_corrupt_mlmodel_is_named(
    tmp_path: Path, content: str | None, message: str
) -> None:
    if content is not None:
        (tmp_path / "MLmodel").write_text(content)
    with pytest.raises(ModelFormatError, match=message):
        Model.load(tmp_path)
