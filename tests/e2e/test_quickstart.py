"""The quickstart example: a sweep against a live tracking server, the best model registered."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quickstart" / "train.py"


@pytest.mark.slow
def test_quickstart_tracks_registers_and_serves_the_best_model(
    live_server: Any, tmp_path: Path
) -> None:
    env = {**os.environ, "CAIRN_TRACKING_URI": live_server.url}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--experiment", "e2e"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "as quickstart-regressor v1" in done.stdout

    import cairn
    import cairn.pyfunc
    from cairn.models.registry import RegistryClient

    cairn.set_tracking_uri(live_server.url)
    runs = cairn.search_runs(experiment_names=["e2e"], output_format="list")
    assert len(runs) == 7
    champion = RegistryClient().get_model_version_by_alias("quickstart-regressor", "champion")
    assert champion.run_id in {run.info.run_id for run in runs}
    best = min((r for r in runs if "rmse" in r.data.metrics), key=lambda r: r.data.metrics["rmse"])
    assert champion.run_id == best.info.run_id
    model = cairn.pyfunc.load_model("models:/quickstart-regressor@champion")
    assert model.predict({f"f{i}": [0.0] for i in range(20)}).shape == (1,)
