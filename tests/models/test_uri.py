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
