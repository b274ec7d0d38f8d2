from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from cairn.errors import InvalidParameterError, NotFoundError
from cairn.models.uri import download_model, parse_model_uri

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(
    ("uri", "kind", "fields"),
    [
        ("runs:/abc123/model", "runs", {"run_id": "abc123", "path": "model"}),
        ("runs:/abc123/nested/deep/", "runs", {"run_id": "abc123", "path": "nested/deep"}),
        ("models:/churn/3", "models", {"name": "churn", "version": "3"}),
        ("models:/churn/latest", "models", {"name": "churn", "version": "latest"}),
        ("models:/churn@champion", "models", {"name": "churn", "alias": "champion"}),
        ("file:///srv/models/m", "local", {"path": "/srv/models/m"}),
        ("relative/model", "local", {"path": "relative/model"}),
        ("s3://bucket/m", "artifact", {}),
        ("mlflow-artifacts:/1/abc/artifacts/model", "artifact", {}),
    ],
)
def test_parses_every_uri_shape(uri: str, kind: str, fields: dict[str, str]) -> None:
    parsed = parse_model_uri(uri)
    assert parsed.kind == kind
    for key, value in fields.items():
        assert getattr(parsed, key) == value


@pytest.mark.parametrize("uri", ["", "runs:/", "models:/", "models:/name", "models:/a/b/c"])
def test_malformed_uris_are_refused(uri: str) -> None:
    with pytest.raises(InvalidParameterError, match="model URI"):
        parse_model_uri(uri)


def test_local_folders_are_used_in_place(tmp_path: Path) -> None:
    assert download_model(tmp_path) == tmp_path
    with pytest.raises(NotFoundError, match="no model at"):
        download_model(tmp_path / "missing")


def test_unknown_run_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        download_model("runs:/0123456789abcdef0123456789abcdef/model")


def _log_and_register(name: str) -> tuple[str, object]:
    import numpy as np
    from sklearn.linear_model import LinearRegression

    import cairn
    import cairn.sklearn
    from cairn.models.registry import RegistryClient

    X = np.array([[1.0], [2.0], [3.0]])
    model = LinearRegression().fit(X, [2.0, 4.0, 6.0])
    with cairn.start_run():
        info = cairn.sklearn.log_model(model, "model", registered_model_name=name)
    client = RegistryClient()
    client.set_registered_model_alias(name, "champion", 1)
    return info.model_uri, model


@pytest.mark.parametrize(
    "uri", ["models:/churn/1", "models:/churn/latest", "models:/churn@champion"]
)
def test_registry_uris_load_the_registered_model(uri: str) -> None:
    import cairn.pyfunc

    _log_and_register("churn")
    model = cairn.pyfunc.load_model(uri)
    assert model.predict([[5.0]]).tolist() == pytest.approx([10.0])


def test_registry_uris_that_do_not_resolve_are_not_found() -> None:
    import cairn.pyfunc

    _log_and_register("churn")
    for uri in ("models:/churn/7", "models:/churn@nobody", "models:/ghost/1"):
        with pytest.raises(NotFoundError):
            cairn.pyfunc.load_model(uri)
    with pytest.raises(InvalidParameterError, match="number or 'latest'"):
        cairn.pyfunc.load_model("models:/churn/first")


def test_registry_uris_through_a_tracking_server(
    live_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cairn
    import cairn.pyfunc

    cairn.set_tracking_uri(live_server.url)  # type: ignore[attr-defined]
    _log_and_register("remote")
    model = cairn.pyfunc.load_model("models:/remote@champion")
    assert model.predict([[1.0]]).tolist() == pytest.approx([2.0])
