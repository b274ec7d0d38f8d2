"""The README's main job: the Dataflicks workflow (examples/dataflicks/investigate.sh) end to end.

The script runs as shipped, with the real ``cairn`` CLI, against a real tracking server on
127.0.0.1 (embedded SQLite store in ``tmp_path``); every project run uses this interpreter
(``--env-manager local``), and the scoring server it starts is a real ``cairn models serve``
process on a free port. The assertions read the outcome back from the server and the tables.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dataflicks"
MODEL = "dataflicks-pricing"
FEATURES = ["rooms", "area_m2", "distance_km", "rating", "age_years"]
# The listing the script prices (2 rooms, 65 m², 1.5 km, rated 4.7, 12 years), z-scored.
REQUEST_ROW = [-0.7143, -0.4643, -0.5172, 1.0, -1.2174]
# Its price by the generator's formula, noise left out.
EXPECTED_PRICE = 150 + 5 * 2 + 1.8 * 65 - 8 * 1.5 + 40 * (4.7 - 4) - 0.5 * 12


def _listings_module() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("dataflicks_listings", EXAMPLE / "listings.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_listings_are_deterministic_normalized_and_raw_rows_break_the_model() -> None:
    """The example's premises, fast: seeded rows, z-scored features, a clear error jump."""
    import pandas as pd
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_absolute_error

    listings = _listings_module()
    raw = listings.raw_listings(2000, 7, batch="initial")
    pd.testing.assert_frame_equal(raw, listings.raw_listings(2000, 7, batch="initial"))
    assert not raw.equals(listings.raw_listings(2000, 8, batch="initial"))
    assert (raw["price"] > 0).all()
    train = listings.normalize(raw)
    for name in FEATURES:
        assert abs(train[name].mean()) < 0.1, name
        assert 0.9 < train[name].std() < 1.1, name
    pd.testing.assert_series_equal(train["price"], raw["price"])

    holdout = listings.normalize(listings.raw_listings(500, 8, batch="holdout"))
    bad = listings.raw_listings(1000, 11, batch="partner-feed")

    def mae(frame: Any) -> float:
        model = Ridge(alpha=1.0).fit(frame[FEATURES], frame["price"])
        return float(mean_absolute_error(holdout["price"], model.predict(holdout[FEATURES])))

    clean = mae(train)
    assert clean < 1.2 * listings.NOISE_EUR  # the model learns the prices to within the noise
    assert mae(pd.concat([train, bad])) > 2.5 * clean
    assert mae(pd.concat([train, listings.normalize(bad)])) < 1.1 * clean


def _run_script(tmp_path: Path, url: str) -> str:
    project = tmp_path / "dataflicks"
    # Outside any git work tree, so `cairn runs reproduce` reruns this folder as it is.
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAIRN_", "MLFLOW_"))}
    env.update(
        CAIRN_TRACKING_URI=url,
        CAIRN_HOME=str(tmp_path / "cairn-home"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        # No bytecode in the tree: give the script's ~35 Python processes one private cache,
        # so pandas, scikit-learn and the rest compile once instead of in every process.
        env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
    done = subprocess.run(
        ["bash", str(project / "investigate.sh"), str(tmp_path / "data")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def _by_entry_point(runs: list[Any], name: str) -> list[Any]:
    found = [r for r in runs if r.data.tags.get("mlflow.project.entryPoint") == name]
    return sorted(found, key=lambda r: r.info.start_time)


def _read_version(run: Any, table: str, role: str = "input") -> int:
    from cairn.data import table_inputs

    versions = [t.version for t in table_inputs(run) if t.uri == table and t.role == role]
    assert len(versions) == 1, table_inputs(run)
    return versions[0]


@pytest.mark.slow
def test_dataflicks_traces_a_bad_load_fixes_it_and_serves_the_new_champion(
    live_server: Any, tmp_path: Path
) -> None:
    stdout = _run_script(tmp_path, live_server.url)

    import cairn
    import cairn.pyfunc
    from cairn.data import diff, history
    from cairn.models.registry import RegistryClient

    cairn.set_tracking_uri(live_server.url)
    listings = str((tmp_path / "data" / "listings").resolve())
    holdout = str((tmp_path / "data" / "holdout").resolve())
    runs = cairn.search_runs(experiment_names=["dataflicks"], output_format="list")
    assert all(r.info.status.value == "FINISHED" for r in runs)
    (generate,) = _by_entry_point(runs, "generate")
    (load_bad,) = _by_entry_point(runs, "load_bad")
    (fix,) = _by_entry_point(runs, "fix")
    first, retrain, fixed = _by_entry_point(runs, "train")
    assert [first.info.run_name, retrain.info.run_name, fixed.info.run_name] == [
        "train",
        "scheduled-retrain",
        "retrain-on-fixed-data",
    ]
    assert fixed.data.tags["cairn.project.reproduces"] == retrain.info.run_id

    # The scheduled retrain's held-out error is far above the first run's...
    mae = [run.data.metrics["mae"] for run in (first, retrain, fixed)]
    assert mae[1] > 2.5 * mae[0], mae
    assert retrain.data.metrics["rmse"] > 2.5 * first.data.metrics["rmse"]
    # ...because it read another version of the table; both read the same held-out version.
    assert [_read_version(r, listings) for r in (first, retrain, fixed)] == [0, 1, 2]
    assert [_read_version(r, holdout) for r in (first, retrain, fixed)] == [0, 0, 0]
    assert _read_version(load_bad, listings, "output") == 1
    assert _read_version(fix, listings, "input") == 1
    assert _read_version(fix, listings, "output") == 2
    assert _read_version(generate, listings, "output") == 0

    # The diff flags exactly the un-normalized columns and names the commit that added them.
    cli = Path(sys.executable).parent / "cairn"
    shown = subprocess.run(
        [str(cli), "data", "diff", listings, "0", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    changed = json.loads(shown.stdout)
    assert sorted(changed["shifted"]) == sorted(FEATURES)
    assert (changed["from_rows"], changed["to_rows"]) == (2000, 3000)
    (commit,) = changed["commits"]
    assert (commit["version"], commit["operation"]) == (1, "WRITE")
    assert commit["run_id"] == load_bad.info.run_id
    assert diff(listings, 0, 2).shifted == []  # the corrected version looks like version 0
    assert [c.run_id for c in history(listings)] == [
        fix.info.run_id,
        load_bad.info.run_id,
        generate.info.run_id,
    ]

    # Reproduced on the corrected version, the error is back near the original.
    assert mae[2] < 1.15 * mae[0], mae

    # Every train run registered a version; champion moved from the first to the reproduced run.
    registry = RegistryClient()
    versions = {v.run_id: v.version for v in registry.search_model_versions(f"name = '{MODEL}'")}
    assert versions == {first.info.run_id: 1, retrain.info.run_id: 2, fixed.info.run_id: 3}
    champion = registry.get_model_version_by_alias(MODEL, "champion")
    assert (champion.version, champion.run_id) == (3, fixed.info.run_id)

    # The scoring server the script started answered with the champion's prediction.
    answers = re.findall(r'^\{"predictions":.*\}$', stdout, re.MULTILINE)
    assert len(answers) == 1, stdout[-2000:]
    (served,) = json.loads(answers[0])["predictions"]
    model = cairn.pyfunc.load_model(f"models:/{MODEL}/3")
    row = dict(zip(FEATURES, ([value] for value in REQUEST_ROW), strict=True))
    (local,) = model.predict(row)
    assert served == pytest.approx(float(local), rel=1e-6)
    assert served == pytest.approx(EXPECTED_PRICE, abs=15)
