"""The stock ``mlflow`` client's model registry against a real Cairn server on 127.0.0.1.

MLflow 3 logs a model as a logged model and registers ``runs:/<run>/model`` with a
``models:/<model_id>`` source; loading ``models:/<name>@<alias>`` then goes through the alias,
the version's download URI and the artifact proxy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

    from tests.conftest import LiveServer

# Old clients still call the stage APIs MLflow deprecates; Cairn serves them.
pytestmark = pytest.mark.filterwarnings("ignore:.*Model registry stages:FutureWarning")


@pytest.fixture
def mlflow(live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """``mlflow`` pointed at the live server; telemetry off, no retries, short timeouts."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", live_server.url)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    import mlflow as mlflow_module
    from mlflow.tracking import fluent

    monkeypatch.setattr(fluent, "_active_experiment_id", None)
    yield mlflow_module
    while mlflow_module.active_run() is not None:
        mlflow_module.end_run()


def _fit() -> tuple[Any, Any, Any]:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    features = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.0, 1.0, 0.0, 1.0]})
    target = np.array([1.0, 2.5, 3.0, 4.5])
    return LinearRegression().fit(features, target), features, target


def test_register_alias_search_and_load(mlflow: ModuleType, live_server: LiveServer) -> None:
    import numpy as np

    client = mlflow.MlflowClient()
    model, features, _ = _fit()
    mlflow.set_experiment("compat-registry")
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(model, name="model", input_example=features.head(2))
    run_id = run.info.run_id

    first = mlflow.register_model(f"runs:/{run_id}/model", "housing")
    assert (first.name, first.version, first.run_id, first.status) == (
        "housing",
        "1",
        run_id,
        "READY",
    )
    second = mlflow.register_model(f"runs:/{run_id}/model", "housing", tags={"kind": "retrain"})
    assert second.version == "2" and second.tags == {"kind": "retrain"}

    client.set_registered_model_alias("housing", "champion", "1")
    champion = client.get_model_version_by_alias("housing", "champion")
    assert (champion.version, champion.aliases, champion.run_id) == ("1", ["champion"], run_id)
    registered = client.get_registered_model("housing")
    assert registered.aliases == {"champion": "1"}
    assert [v.version for v in registered.latest_versions] == ["2"]

    client.create_registered_model("other", tags={"team": "risk"}, description="unrelated")
    models = mlflow.search_registered_models(filter_string="name LIKE 'hous%'")
    assert [m.name for m in models] == ["housing"]
    by_tag = client.search_registered_models(filter_string="tags.team = 'risk'")
    assert [(m.name, m.description) for m in by_tag] == [("other", "unrelated")]
    versions = client.search_model_versions(f"run_id = '{run_id}'", order_by=["version_number"])
    assert [v.version for v in versions] == ["1", "2"]
    assert [v.version for v in mlflow.search_model_versions(filter_string="name = 'housing'")] == [
        "2",
        "1",
    ]
    assert [v.version for v in client.get_latest_versions("housing")] == ["2"]

    loaded = mlflow.pyfunc.load_model("models:/housing@champion")
    np.testing.assert_allclose(loaded.predict(features), model.predict(features))
    by_number = mlflow.sklearn.load_model("models:/housing/2")
    np.testing.assert_allclose(by_number.coef_, model.coef_)
    newest = mlflow.pyfunc.load_model("models:/housing/latest")
    np.testing.assert_allclose(newest.predict(features), model.predict(features))

    # What the stock client registered, Cairn's own client reads back.
    from cairn.models.registry import RegistryClient

    cairn_view = RegistryClient(live_server.url).get_model_version_by_alias("housing", "champion")
    assert cairn_view.run_id == run_id and cairn_view.source.startswith("models:/")
    assert client.get_model_version_download_uri("housing", "1").startswith("mlflow-artifacts:/")

    # ...and Cairn loads the model the stock client logged and registered, by alias.
    import cairn
    import cairn.pyfunc

    cairn.set_tracking_uri(live_server.url)
    ours = cairn.pyfunc.load_model("models:/housing@champion")
    np.testing.assert_allclose(ours.predict(features), model.predict(features))


def test_update_rename_tags_and_delete(mlflow: ModuleType) -> None:
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    client.create_registered_model("m", description="first words")
    with pytest.raises(MlflowException, match="already exists") as duplicate:
        client.create_registered_model("m")
    assert duplicate.value.error_code == "RESOURCE_ALREADY_EXISTS"
    created = client.create_model_version("m", "s3://bucket/model", description="v1")
    assert (created.version, created.source, created.current_stage) == (
        "1",
        "s3://bucket/model",
        "None",
    )
    client.update_registered_model("m", description="better words")
    client.update_model_version("m", "1", description="one")
    client.set_registered_model_tag("m", "team", "growth")
    client.set_model_version_tag("m", "1", "validated", "yes")
    client.set_registered_model_alias("m", "prod", "1")
    fetched = client.get_model_version("m", "1")
    assert (fetched.description, fetched.tags, fetched.aliases) == (
        "one",
        {"validated": "yes"},
        ["prod"],
    )
    assert client.get_registered_model("m").description == "better words"

    client.delete_model_version_tag("m", "1", "validated")
    client.delete_registered_model_tag("m", "team")
    client.delete_registered_model_alias("m", "prod")
    client.rename_registered_model("m", "renamed")
    assert client.get_registered_model("renamed").description == "better words"
    assert client.get_model_version("renamed", "1").tags == {}
    with pytest.raises(MlflowException, match="does not exist") as missing:
        client.get_registered_model("m")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException, match="looks like a version"):
        client.set_registered_model_alias("renamed", "v3", "1")

    staged = client.transition_model_version_stage("renamed", "1", "Production")
    assert staged.current_stage == "Production"
    assert [v.version for v in client.get_latest_versions("renamed", stages=["Production"])] == [
        "1"
    ]
    client.delete_model_version("renamed", "1")
    assert client.search_model_versions("name = 'renamed'") == []
    client.delete_registered_model("renamed")
    assert client.search_registered_models() == []
