"""Run lineage: the table versions a run read and wrote, locally and through a server."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

import cairn
from cairn import data
from cairn.data.pins import PINS_ENV, encode_pins, parse_pin
from cairn.entities import Dataset
from cairn.errors import InvalidParameterError

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def table(tmp_path: Path) -> str:
    uri = str(tmp_path / "listings")
    data.write_table(pd.DataFrame({"rooms": [1, 2, 3], "price": [1.0, 2.0, 3.0]}), uri)
    data.write_table(pd.DataFrame({"rooms": [4], "price": [4.0]}), uri)
    return uri


def test_a_read_inside_a_run_is_recorded_with_version_and_digest(table: str) -> None:
    with cairn.start_run() as run:
        data.read_table(table, version=0)
        data.read_table(table, version=0)  # the same version twice is one input
        data.read_table(table)
    [first, second] = data.table_inputs(cairn.get_run(run.info.run_id))
    info = data.table_info(table, 0)
    assert (first.uri, first.version, first.role) == (table, 0, "input")
    assert first.num_rows == 3 and first.schema_hash == info.schema_hash
    assert first.content_digest == info.content_digest and first.digest == info.digest
    assert (second.version, second.num_rows) == (1, 4)
    [dataset] = [
        item.dataset
        for item in cairn.get_run(run.info.run_id).inputs.dataset_inputs
        if item.tags["cairn.data.version"] == "0"
    ]
    assert dataset.source_type == "delta_table" and dataset.name == "listings"
    assert json.loads(dataset.source) == {
        "path": table,
        "delta_table_version": 0,
        "delta_table_id": info.table_id,
    }
    colspec = json.loads(dataset.schema or "")["mlflow_colspec"]
    assert colspec[0] == {"name": "rooms", "type": "long"}


def test_a_read_outside_a_run_records_nothing_and_starts_no_run(table: str) -> None:
    data.read_table(table)
    assert cairn.active_run() is None
    assert cairn.search_runs(output_format="list") == []


def test_a_write_inside_a_run_is_an_output_and_signs_the_commit(table: str) -> None:
    with cairn.start_run() as run:
        version = data.write_table(pd.DataFrame({"rooms": [5], "price": [5.0]}), table)
    [output] = data.table_inputs(cairn.get_run(run.info.run_id))
    assert (output.role, output.version, output.num_rows) == ("output", version, 5)
    assert data.history(table, limit=1)[0].run_id == run.info.run_id


def test_a_version_written_then_read_by_the_run_stays_its_output(table: str) -> None:
    with cairn.start_run() as run:
        version = data.write_table(pd.DataFrame({"rooms": [5], "price": [5.0]}), table)
        data.read_table(table, version=version)
    [only] = cairn.get_run(run.info.run_id).inputs.dataset_inputs
    assert only.tags["cairn.data.role"] == "output"
    assert only.tags["cairn.data.read_back"] == "true"


def test_the_launcher_run_id_is_used_without_an_active_run(
    table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = cairn.start_run()
    cairn.end_run()
    monkeypatch.setenv("CAIRN_RUN_ID", run.info.run_id)
    data.read_table(table, version=1)
    [recorded] = data.table_inputs(cairn.get_run(run.info.run_id))
    assert recorded.version == 1


def test_log_input_by_hand(table: str) -> None:
    with cairn.start_run() as run:
        cairn.log_input(table, version=0, context="training")
        cairn.log_input(
            Dataset("holdout", "d1g35t", "local", '{"path": "/data/holdout.csv"}'), context="eval"
        )
    recorded = cairn.get_run(run.info.run_id).inputs.dataset_inputs
    assert {item.dataset.name: item.tags.get("mlflow.data.context") for item in recorded} == {
        "listings": "training",
        "holdout": "eval",
    }
    [table_input] = data.table_inputs(cairn.get_run(run.info.run_id))
    assert (table_input.version, table_input.context) == (0, "training")
    with pytest.raises(InvalidParameterError, match=r"table URI or a cairn\.entities\.Dataset"):
        cairn.log_input(42)  # type: ignore[arg-type]


def test_pins_choose_the_version_a_bare_read_gets(
    table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PINS_ENV, encode_pins({table: 0}))
    assert len(data.read_table(table)) == 3
    assert len(data.read_table(table, version=1)) == 4  # an explicit version wins
    monkeypatch.setenv(PINS_ENV, "not json")
    with pytest.raises(InvalidParameterError, match="JSON object of table URI"):
        data.read_table(table)


def test_parse_pin(tmp_path: Path) -> None:
    assert parse_pin(f"{tmp_path}/t=3") == (str(tmp_path / "t"), 3)
    assert parse_pin("s3://bucket/t=0") == ("s3://bucket/t", 0)
    for bad in ("t", "t=", "=3", "t=-1", "t=x"):
        with pytest.raises(InvalidParameterError, match="URI=VERSION"):
            parse_pin(bad)


def test_lineage_travels_over_the_rest_api(table: str, live_server: Any) -> None:
    import mlflow

    cairn.set_tracking_uri(live_server.url)
    with cairn.start_run() as run:
        data.read_table(table, version=0)
        data.write_table(pd.DataFrame({"rooms": [9], "price": [9.0]}), table)
    recorded = data.table_inputs(cairn.get_run(run.info.run_id))
    assert [(r.role, r.version) for r in recorded] == [("input", 0), ("output", 2)]
    # A stock MLflow client sees the same dataset inputs.
    mlflow.set_tracking_uri(live_server.url)
    try:
        inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    finally:
        mlflow.set_tracking_uri(None)
    sources = sorted(json.loads(item.dataset.source)["delta_table_version"] for item in inputs)
    assert sources == [0, 2]
    assert {item.dataset.source_type for item in inputs} == {"delta_table"}
