from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import cairn
import cairn.pyfunc
import cairn.sklearn
from cairn.errors import ModelFormatError, ModelInputError

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd


Iris = tuple["pd.DataFrame", LogisticRegression]


@pytest.fixture(scope="module")
def iris() -> Iris:
    frame = load_iris(as_frame=True)
    X = frame.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    return X, LogisticRegression(max_iter=500).fit(X, frame.target)


def test_save_load_and_predict(tmp_path: Path, iris: Iris) -> None:
    X, model = iris
    mlmodel = cairn.sklearn.save_model(model, tmp_path / "m", input_example=X[:5])
    assert set(mlmodel.flavors) == {"python_function", "sklearn"}
    assert mlmodel.signature is not None
    assert mlmodel.signature.inputs.names() == list(X.columns)
    assert mlmodel.signature.outputs is not None
    files = {p.name for p in (tmp_path / "m").iterdir()}
    assert {"MLmodel", "model.pkl", "requirements.txt", "python_env.yaml"} <= files
    assert {"input_example.json", "serving_input_example.json"} <= files
    assert any(
        line.startswith("scikit-learn==")
        for line in (tmp_path / "m" / "requirements.txt").read_text().splitlines()
    )
    native = cairn.sklearn.load_model(tmp_path / "m")
    np.testing.assert_array_equal(native.predict(X), model.predict(X))
    pyfunc = cairn.pyfunc.load_model(f"file://{tmp_path / 'm'}")
    np.testing.assert_array_equal(pyfunc.predict(X), model.predict(X))
    assert pyfunc.get_raw_model().__class__ is LogisticRegression


def test_signature_is_enforced(tmp_path: Path, iris: Iris) -> None:
    X, model = iris
    cairn.sklearn.save_model(model, tmp_path / "m", input_example=X[:5])
    pyfunc = cairn.pyfunc.load_model(tmp_path / "m")
    bad = X[:2].drop(columns=["petal_width"]).assign(sepal_length=["a", "b"])
    with pytest.raises(ModelInputError) as caught:
        pyfunc.predict(bad)
    assert "column 'sepal_length': expected double, got string" in caught.value.message
    assert "column 'petal_width': missing (expected double)" in caught.value.message


def test_predict_fn_and_serialization_formats(tmp_path: Path, iris: Iris) -> None:
    X, model = iris
    for fmt in ("pickle", "cloudpickle", "skops"):
        cairn.sklearn.save_model(
            model, tmp_path / fmt, serialization_format=fmt, pyfunc_predict_fn="predict_proba"
        )
        proba = cairn.pyfunc.load_model(tmp_path / fmt).predict(X[:3])
        np.testing.assert_allclose(proba, model.predict_proba(X[:3]))
    with pytest.raises(ModelFormatError, match="unknown serialization format"):
        cairn.sklearn.save_model(model, tmp_path / "x", serialization_format="joblib")
    with pytest.raises(ModelFormatError, match="no transform_all"):
        cairn.sklearn.save_model(model, tmp_path / "y", pyfunc_predict_fn="transform_all")


def test_log_model_then_load_by_run_uri(iris: Iris) -> None:
    X, model = iris
    with cairn.start_run() as run:
        info = cairn.sklearn.log_model(model, "model", input_example=X[:5])
    assert info.run_id == run.info.run_id
    names = {f.path for f in cairn.list_artifacts("model", run_id=run.info.run_id)}
    assert "model/MLmodel" in names
    loaded = cairn.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_missing_pickle_is_a_clear_error(tmp_path: Path, iris: Iris) -> None:
    _, model = iris
    cairn.sklearn.save_model(model, tmp_path / "m")
    (tmp_path / "m" / "model.pkl").unlink()
    with pytest.raises(ModelFormatError, match=r"model\.pkl is missing"):
        cairn.pyfunc.load_model(tmp_path / "m")


def test_mlflow_saved_models_load_in_cairn(tmp_path: Path, iris: Iris) -> None:
    import mlflow.sklearn

    X, model = iris
    # Explicit requirements spare MLflow's slow requirement inference (a subprocess).
    requirements = ["scikit-learn"]
    mlflow.sklearn.save_model(  # skops, MLflow's default format
        model, tmp_path / "skops", input_example=X[:3], pip_requirements=requirements
    )
    mlflow.sklearn.save_model(
        model,
        tmp_path / "cp",
        serialization_format="cloudpickle",
        input_example=X[:3],
        pip_requirements=requirements,
    )
    for name in ("skops", "cp"):
        loaded = cairn.pyfunc.load_model(tmp_path / name)
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
        assert loaded.signature is not None
        np.testing.assert_array_equal(
            cairn.sklearn.load_model(tmp_path / name).predict(X), model.predict(X)
        )


def test_cairn_saved_models_load_in_mlflow(tmp_path: Path, iris: Iris) -> None:
    import mlflow.pyfunc
    import mlflow.sklearn

    X, model = iris
    cairn.sklearn.save_model(model, tmp_path / "m", input_example=X[:3])
    theirs = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    np.testing.assert_array_equal(theirs.predict(X), model.predict(X))
    assert theirs.metadata.get_input_schema().input_names() == list(X.columns)
    native = mlflow.sklearn.load_model(str(tmp_path / "m"))
    np.testing.assert_array_equal(native.predict(X), model.predict(X))
