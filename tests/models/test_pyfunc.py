from __future__ import annotations

import sys
import textwrap
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

import cairn
import cairn.pyfunc
from cairn.errors import (
    AlreadyExistsError,
    InvalidStateError,
    ModelFormatError,
    ModelInputError,
    NotFoundError,
)
from cairn.models.mlmodel import Model

if TYPE_CHECKING:
    from pathlib import Path


class AddN(cairn.pyfunc.PythonModel):
    def __init__(self, n: float) -> None:
        self.n = n
        self.offset = 0.0

    def load_context(self, context: cairn.pyfunc.PythonModelContext) -> None:
        if "offset" in context.artifacts:
            with open(context.artifacts["offset"]) as handle:
                self.offset = float(handle.read())

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> Any:
        scale = (params or {}).get("scale", 1)
        return (model_input["x"] + self.n + self.offset) * scale


def test_custom_model_with_artifacts_and_params(tmp_path: Path) -> None:
    offset = tmp_path / "offset.txt"
    offset.write_text("0.5")
    cairn.pyfunc.save_model(
        tmp_path / "m",
        AddN(1),
        artifacts={"offset": str(offset)},
        input_example=pd.DataFrame({"x": [1.0, 2.0]}),
    )
    assert (tmp_path / "m" / "artifacts" / "offset.txt").read_text() == "0.5"
    model = cairn.pyfunc.load_model(tmp_path / "m")
    assert model.predict(pd.DataFrame({"x": [1.0]})).tolist() == [2.5]
    assert model.predict({"x": [1]}, params={"scale": 2}).tolist() == [5.0]
    assert isinstance(model.unwrap_python_model(), AddN)
    with pytest.raises(ModelInputError, match="column 'x': missing"):
        model.predict(pd.DataFrame({"y": [1.0]}))


def test_predict_without_context_argument_is_accepted(tmp_path: Path) -> None:
    class Double(cairn.pyfunc.PythonModel):
        def predict(self, model_input: Any, params: Any = None) -> Any:  # type: ignore[override]
            return model_input * 2

    cairn.pyfunc.save_model(tmp_path / "m", Double())
    assert cairn.pyfunc.load_model(tmp_path / "m").predict(pd.DataFrame({"a": [2]}))["a"][0] == 4


def test_code_paths_are_importable_on_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = tmp_path / "src" / "helper_mod_for_cairn.py"
    code.parent.mkdir()
    code.write_text(
        textwrap.dedent("""
        import cairn.pyfunc
        class Triple(cairn.pyfunc.PythonModel):
            def predict(self, context, model_input, params=None):
                return model_input * 3
    """)
    )
    monkeypatch.syspath_prepend(str(code.parent))
    import helper_mod_for_cairn

    cairn.pyfunc.save_model(tmp_path / "m", helper_mod_for_cairn.Triple(), code_paths=[str(code)])
    # Forget the module: loading must find it in the model's code/ folder.
    monkeypatch.delitem(sys.modules, "helper_mod_for_cairn")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(code.parent)])
    model = cairn.pyfunc.load_model(tmp_path / "m")
    assert model.predict(pd.DataFrame({"a": [1]}))["a"][0] == 3
    assert (tmp_path / "m" / "code" / "helper_mod_for_cairn.py").exists()


def test_log_model_in_a_run_and_load_from_runs_uri() -> None:
    with cairn.start_run() as run:
        info = cairn.pyfunc.log_model(AddN(1), "model", input_example={"x": [1.0]}, artifacts={})
    assert info.model_uri == f"runs:/{run.info.run_id}/model"
    model = cairn.pyfunc.load_model(info.model_uri)
    assert model.metadata.run_id == run.info.run_id
    assert model.metadata.artifact_path == "model"
    assert model.predict({"x": [1.0]}).tolist() == [2.0]


def test_saving_over_a_non_empty_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("data")
    with pytest.raises(AlreadyExistsError, match="not empty"):
        cairn.pyfunc.save_model(tmp_path / "m", AddN(1))
    assert (tmp_path / "m" / "keep.txt").read_text() == "data"


def test_bad_models_get_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no model at"):
        cairn.pyfunc.load_model(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFormatError, match="no MLmodel file"):
        cairn.pyfunc.load_model(tmp_path / "empty")
    only_native = tmp_path / "native"
    only_native.mkdir()
    Model().add_flavor("keras", data="x").save(only_native)
    with pytest.raises(ModelFormatError, match="no python_function flavor"):
        cairn.pyfunc.load_model(only_native)
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    Model().add_flavor("python_function", loader_module="nosuch.flavor").save(unknown)
    with pytest.raises(ModelFormatError, match=r"'nosuch\.flavor' is not importable"):
        cairn.pyfunc.load_model(unknown)
    cairn.pyfunc.save_model(tmp_path / "corrupt", AddN(1))
    (tmp_path / "corrupt" / "python_model.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ModelFormatError, match="cannot unpickle"):
        cairn.pyfunc.load_model(tmp_path / "corrupt")


def test_a_failing_load_context_is_reported(tmp_path: Path) -> None:
    class Broken(cairn.pyfunc.PythonModel):
        def load_context(self, context: Any) -> None:
            raise KeyError("weights")

    cairn.pyfunc.save_model(tmp_path / "m", Broken())
    with pytest.raises(ModelFormatError, match="load_context failed: KeyError: 'weights'"):
        cairn.pyfunc.load_model(tmp_path / "m")


def test_learn_is_refused_for_offline_models(tmp_path: Path) -> None:
    cairn.pyfunc.save_model(tmp_path / "m", AddN(1))
    model = cairn.pyfunc.load_model(tmp_path / "m")
    assert not model.supports_learning
    with pytest.raises(InvalidStateError, match="cannot learn online"):
        model.learn(pd.DataFrame({"x": [1.0]}), [1.0])


def test_environment_files_pin_versions(tmp_path: Path) -> None:
    import yaml

    cairn.pyfunc.save_model(tmp_path / "m", AddN(1), extra_pip_requirements=["requests"])
    requirements = (tmp_path / "m" / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("cloudpickle==") for line in requirements)
    assert "requests" in requirements
    env = yaml.safe_load((tmp_path / "m" / "python_env.yaml").read_text())
    assert env["python"].count(".") == 2 and env["dependencies"] == ["-r requirements.txt"]
