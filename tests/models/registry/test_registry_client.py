"""RegistryClient: validation, register_model and the choice of store behind a tracking URI."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

import cairn
from cairn.errors import (
    InvalidParameterError,
    NotFoundError,
    SearchSyntaxError,
    UnsafePathError,
)
from cairn.models.registry import RegistryClient
from cairn.models.registry.stores.sql import SqlRegistryStore
from cairn.tracking.client import TrackingClient

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def client(sqlite_uri: str) -> RegistryClient:
    return RegistryClient(sqlite_uri)


def test_default_tracking_uri_and_store(tmp_path: Path) -> None:
    client = RegistryClient()
    assert client.tracking_uri == str(tmp_path / "cairn-home")  # $CAIRN_TRACKING_URI
    assert isinstance(client.store, SqlRegistryStore)
    client.create_registered_model("m")
    cairn.set_tracking_uri(tmp_path / "elsewhere")
    assert RegistryClient().search_registered_models() == []
    assert [m.name for m in RegistryClient(tmp_path / "cairn-home").search_registered_models()] == [
        "m"
    ]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "expected a non-empty string"),
        ("   ", "expected a non-empty string"),
        ("x" * 257, "257 characters, the limit is 256"),
        ("a/b", "cannot contain '/' or ':'"),
        ("a:b", "cannot contain '/' or ':'"),
        ("..", "'.' and '..' are reserved"),
        ("bad\x00name", "NUL character"),
    ],
)
def test_bad_model_names_are_refused(client: RegistryClient, name: str, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=re.escape(message)):
        client.create_registered_model(name)


def test_bad_input_is_refused_with_clear_messages(client: RegistryClient) -> None:
    client.create_registered_model("m")
    client.create_model_version("m", "s3://bucket/model")
    assert client.create_registered_model("x" * 256).name == "x" * 256
    for alias in ("v1", "V12", "1", "latest", "LATEST"):
        with pytest.raises(InvalidParameterError, match=f"Invalid alias '{alias}'"):
            client.set_registered_model_alias("m", alias, 1)
    with pytest.raises(InvalidParameterError, match="only contain letters, digits"):
        client.set_registered_model_alias("m", "has space", 1)
    with pytest.raises(InvalidParameterError, match="expected a positive integer such as 3"):
        client.get_model_version("m", "one")
    with pytest.raises(InvalidParameterError, match="versions start at 1"):
        client.get_model_version("m", 0)
    with pytest.raises(NotFoundError, match="Model version 99999999999 does not exist"):
        client.get_model_version("m", "99999999999")
    with pytest.raises(InvalidParameterError, match="Invalid tag name 'bad\\*key'"):
        client.set_registered_model_tag("m", "bad*key", "v")
    with pytest.raises(InvalidParameterError, match="100001 characters; the limit is 100000"):
        client.set_model_version_tag("m", 1, "k", "x" * 100_001)
    with pytest.raises(InvalidParameterError, match="5001 characters; the limit is 5000"):
        client.update_registered_model("m", "d" * 5001)
    with pytest.raises(InvalidParameterError, match="Invalid model source ''"):
        client.create_model_version("m", "")
    with pytest.raises(InvalidParameterError, match="Invalid stage 'Prod'"):
        client.transition_model_version_stage("m", 1, "Prod")
    with pytest.raises(SearchSyntaxError, match="unknown field 'bogus' for model versions"):
        client.search_model_versions("bogus = 'x'")
    with pytest.raises(NotFoundError, match="Registered model 'nope' does not exist"):
        client.get_model_version_download_uri("nope", 1)
    with pytest.raises(NotFoundError, match="Registered model 'm' has no alias 'champion'"):
        client.get_model_version_by_alias("m", "champion")


def test_versions_by_number_alias_and_latest(client: RegistryClient) -> None:
    client.create_registered_model("m", tags={"team": "x"}, description="about m")
    for source in ("s3://b/1", "s3://b/2", "s3://b/3"):
        client.create_model_version("m", source, tags={"src": source})
    client.set_registered_model_alias("m", "champion", "2")
    assert client.get_model_version("m", "3").source == "s3://b/3"
    assert client.get_model_version_by_alias("m", "champion").source == "s3://b/2"
    assert [v.version for v in client.get_latest_versions("m")] == [3]
    assert client.get_model_version_download_uri("m", 1) == "s3://b/1"
    client.transition_model_version_stage("m", 1, "production")
    assert [v.version for v in client.get_latest_versions("m", ["Production"])] == [1]
    assert [v.version for v in client.get_latest_versions("m")] == [3, 1]
    found = client.search_model_versions("name = 'm' AND tags.src LIKE '%/2'")
    assert [v.version for v in found] == [2]
    client.delete_model_version("m", 2)
    with pytest.raises(NotFoundError, match="has no alias 'champion'"):
        client.get_model_version_by_alias("m", "champion")


def test_register_model_from_a_run(sqlite_uri: str) -> None:
    tracking = TrackingClient(sqlite_uri)
    run = tracking.create_run("0")
    client = RegistryClient(sqlite_uri)
    first = client.register_model(f"runs:/{run.info.run_id}/model", "housing", {"k": "v"})
    assert first.source == f"{run.info.artifact_uri}/model"
    assert (first.version, first.run_id, first.tags) == (1, run.info.run_id, {"k": "v"})
    second = client.register_model(f"runs:/{run.info.run_id}/nested/model/", "housing")
    assert second.version == 2
    assert second.source == f"{run.info.artifact_uri}/nested/model"
    whole_run = client.register_model(f"runs:/{run.info.run_id}", "housing")
    assert whole_run.source == run.info.artifact_uri

    with pytest.raises(NotFoundError, match="Run 'nope' does not exist"):
        client.register_model("runs:/nope/model", "housing")
    with pytest.raises(InvalidParameterError, match="expected runs:/<run_id>/<path>"):
        client.register_model("runs:/", "housing")
    with pytest.raises(UnsafePathError):
        client.register_model(f"runs:/{run.info.run_id}/../../etc", "housing")
    assert [v.version for v in client.search_model_versions("name = 'housing'")] == [3, 2, 1]


def test_register_model_from_paths_and_uris(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir = tmp_path / "work" / "model"
    model_dir.mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work")
    version = cairn.register_model("model", "local")
    assert version.source == str(model_dir)  # made absolute
    assert version.run_id is None
    assert cairn.register_model("s3://bucket/m", "local").source == "s3://bucket/m"
    assert cairn.register_model("models:/m-123", "local").source == "models:/m-123"
    assert cairn.register_model(f"file://{model_dir}", "local").source == f"file://{model_dir}"
    with pytest.raises(NotFoundError, match=r"No model at .*missing"):
        cairn.register_model("missing", "local")
    with pytest.raises(InvalidParameterError, match="cannot contain"):
        cairn.register_model("model", "bad/name")
    names = [m.name for m in RegistryClient().search_registered_models()]
    assert names == ["local"]
