"""cairn.data.diff: schema changes, row counts, column statistics and the commits between."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

import cairn
from cairn import data
from cairn.errors import TableVersionError

if TYPE_CHECKING:
    from pathlib import Path


def _normalized(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"area": rng.normal(0, 1, rows), "city": rng.choice(["a", "b"], rows)})


@pytest.fixture
def table(tmp_path: Path) -> str:
    uri = str(tmp_path / "homes")
    data.write_table(_normalized(500, 1), uri)
    return uri


def test_unnormalized_load_shows_as_shifted_column_and_its_commit(table: str) -> None:
    raw = pd.DataFrame({"area": np.full(200, 85.0), "city": ["a"] * 200})
    with cairn.start_run() as run:
        data.write_table(raw, table)
    result = data.diff(table, 0, 1)
    assert (result.from_rows, result.to_rows) == (500, 700)
    assert result.schema_changes == ()
    old, new = result.columns["area"]
    assert old is not None and new is not None
    assert abs(old.mean or 0) < 0.2 and (new.mean or 0) > 20
    assert new.max == 85.0 and new.count == 700 and new.nulls == 0
    assert result.shifted == ["area"]
    city_old, _ = result.columns["city"]
    assert city_old is not None and city_old.distinct == 2 and city_old.mean is None
    [commit] = result.commits
    assert commit.version == 1 and commit.run_id == run.info.run_id
    assert commit.metrics["num_added_rows"] == 200


def test_similar_data_is_not_flagged(table: str) -> None:
    data.write_table(_normalized(500, 2), table)
    assert data.diff(table, 0, 1).shifted == []


def test_schema_changes_and_reverse_order(table: str) -> None:
    data.write_table(_normalized(5, 3).assign(rooms=[1, 2, 3, 4, 5]), table, schema_mode="merge")
    data.write_table(_normalized(5, 4), table, mode="overwrite", schema_mode="merge")
    result = data.diff(table, 2, 0)
    assert [(c.column, c.change) for c in result.schema_changes] == [("rooms", "removed")]
    assert [c.version for c in result.commits] == [2, 1]
    forward = data.diff(table, 0, 1)
    assert [(c.column, c.change, c.new_type) for c in forward.schema_changes] == [
        ("rooms", "added", "long")
    ]
    assert forward.columns["rooms"][0] is None
    payload = forward.to_dict()
    assert payload["columns"]["rooms"]["from"] is None
    assert payload["commits"][0]["version"] == 1


def test_diff_of_missing_version(table: str) -> None:
    with pytest.raises(TableVersionError, match="has no version 4"):
        data.diff(table, 0, 4)
