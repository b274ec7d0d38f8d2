"""The web UI's Data and Lineage pages in a real browser (Playwright + Debian's chromium).

One ``cairn server`` per module, seeded through its REST API with a Delta table of three
versions (v2 shifts ``sqft`` tenfold), a loader run that wrote v1, two training runs that read
v1 and v2, and model ``e2e-data-prices`` v1 registered from the second. Screenshots land in
``test-output/ui/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from playwright.sync_api import Page

pytestmark = pytest.mark.slow

MODEL = "e2e-data-prices"


@dataclass
class Seeded:
    url: str
    table: str
    runs: dict[str, str]  # run name -> run id


def _seed(url: str, workdir: Path) -> Seeded:
    import numpy as np
    import pandas as pd

    import cairn
    from cairn import data
    from cairn.models.registry.client import RegistryClient

    def rows(n: int, seed: int, scale: float = 1.0) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        return pd.DataFrame(
            {"sqft": rng.normal(100, 10, n) * scale, "rooms": rng.integers(1, 6, n)}
        )

    cairn.set_tracking_uri(url)  # the autouse fixture of tests/conftest.py resets it
    cairn.set_experiment("e2e-data")
    table = str(workdir / "listings")
    data.write_table(rows(50, 0), table)
    runs = {}
    with cairn.start_run(run_name="load-listings") as run:
        data.write_table(rows(20, 1), table)
    runs["load-listings"] = run.info.run_id
    data.write_table(rows(30, 2, scale=10.0), table, mode="overwrite")
    for name, version in (("train-v1", 1), ("train-v2", 2)):
        with cairn.start_run(run_name=name) as run:
            data.read_table(table, version=version)
            cairn.log_params({"alpha": "0.5", "table_version": str(version)})
        runs[name] = run.info.run_id
    registry = RegistryClient(url)
    registry.create_registered_model(MODEL)
    registry.create_model_version(MODEL, f"runs:/{runs['train-v2']}/model", runs["train-v2"])
    return Seeded(url, table, runs)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, ui_server: Callable[[Path], str]) -> Seeded:
    workdir = tmp_path_factory.mktemp("ui-data-server")
    return _seed(ui_server(workdir / "store"), workdir)


def test_data_page_shows_history_and_the_shifted_column(
    page: Page, seeded: Seeded, shot: Callable[[Page, str], None]
) -> None:
    page.goto(f"{seeded.url}/data")
    row = page.locator(f'table.tables tr[data-uri="{seeded.table}"]')
    assert row.locator("td").nth(2).inner_text() == "v2, v1"
    row.get_by_role("link", name="listings").click()

    history = page.locator("table.history tbody tr")
    history.first.wait_for()
    assert [history.nth(i).get_attribute("data-version") for i in range(3)] == ["2", "1", "0"]
    assert history.count() == 3
    v1 = page.locator('table.history tr[data-version="1"]')
    assert v1.locator("td.readers").inner_text() == "train-v1"
    assert v1.locator("td.writers").inner_text() == "load-listings"
    assert page.locator('table.history tr[data-version="2"] td.readers').inner_text() == "train-v2"

    page.locator('table.history tr[data-version="2"]').get_by_role(
        "link", name="diff vs previous"
    ).click()
    shifted = page.locator('table.column-diff tr[data-column="sqft"]')
    shifted.wait_for()
    assert "shifted" in (shifted.get_attribute("class") or "")
    assert "shifted" not in (
        page.locator('table.column-diff tr[data-column="rooms"]').get_attribute("class") or ""
    )
    assert "Rows 70 → 30" in page.locator(".diff-summary").inner_text()
    assert "from=1" in page.url and "to=2" in page.url
    shot(page, "data_diff_v1_v2")

    page.go_back()  # history works: back to the table without a diff
    page.locator("table.history tbody tr").first.wait_for()
    assert page.locator("table.column-diff").count() == 0


def test_a_path_no_run_recorded_shows_an_error(page: Page, seeded: Seeded) -> None:
    page.goto(f"{seeded.url}/data?uri={quote('/etc')}")
    alert = page.get_by_role("alert").first
    alert.wait_for()
    assert "No run recorded a Delta table at '/etc'" in alert.inner_text()


def test_a_run_input_links_to_the_data_page_at_its_version(page: Page, seeded: Seeded) -> None:
    page.goto(f"{seeded.url}/runs/{seeded.runs['train-v1']}")
    row = page.locator(f'table.inputs tr[data-uri="{seeded.table}"]')
    row.wait_for()
    assert row.get_attribute("data-version") == "1"
    assert row.get_attribute("data-role") == "input"
    assert "70" in row.inner_text()
    row.get_by_role("link", name="listings").click()
    page.locator('table.history tr[data-version="1"].selected').wait_for()
    assert "v=1" in page.url
    info = page.locator("table.version-info")
    info.wait_for()
    assert "70" in info.inner_text()

    page.goto(f"{seeded.url}/runs/{seeded.runs['load-listings']}")
    written = page.locator(f'table.inputs tr[data-uri="{seeded.table}"]')
    written.wait_for()
    assert written.get_attribute("data-role") == "output"


def test_lineage_of_a_model_version_shows_the_chain(
    page: Page, seeded: Seeded, shot: Callable[[Page, str], None]
) -> None:
    page.goto(f"{seeded.url}/models/{MODEL}")
    page.locator('table.versions tr[data-version="1"]').get_by_role("link", name="lineage").click()
    model = page.locator('.lineage-node[data-kind="model"]')
    model.wait_for()
    assert f"{MODEL} v1" in model.inner_text()
    run = page.locator('.lineage-node[data-kind="run"]')
    assert "train-v2" in run.inner_text()
    params = page.locator('.lineage-node[data-kind="params"]').inner_text()
    assert "table_version" in params and "alpha" in params
    table = page.locator('.lineage-node[data-kind="table"]')
    assert table.count() == 1
    assert "listings v2" in table.inner_text() and "read" in table.inner_text()
    assert "content unchanged" in table.inner_text()
    assert [line.split(" ")[0] for line in table.locator("ul.commits li").all_inner_texts()] == [
        "v2",
        "v1",
        "v0",
    ]
    shot(page, "lineage_model_version")
    table.get_by_role("link", name="listings v2").click()
    page.locator('table.history tr[data-version="2"].selected').wait_for()


def test_compare_flags_runs_that_read_different_table_versions(
    page: Page, seeded: Seeded, shot: Callable[[Page, str], None]
) -> None:
    ids = ",".join(seeded.runs[name] for name in ("train-v1", "train-v2"))
    page.goto(f"{seeded.url}/compare?runs={ids}")
    note = page.locator(".data-note")
    note.wait_for()
    assert "different versions of listings (v1, v2)" in note.inner_text()
    row = page.locator(f'table.diff tr[data-key="data.{seeded.table}"]')
    assert row.get_attribute("class") == "differs"
    assert row.locator("td").all_inner_texts()[1:] == ["v1", "v2"]
    shot(page, "compare_table_versions")
    note.get_by_role("link").click()
    page.locator('table.column-diff tr[data-column="sqft"].shifted').wait_for()


def test_lineage_of_a_run_from_its_page(page: Page, seeded: Seeded) -> None:
    page.goto(f"{seeded.url}/runs/{seeded.runs['train-v1']}")
    page.locator(".head-links").get_by_role("link", name="Lineage").click()
    table = page.locator('.lineage-node[data-kind="table"]')
    table.wait_for()
    assert "listings v1" in table.inner_text()
    assert page.locator('.lineage-node[data-kind="model"]').count() == 0
    assert "train-v1" in page.locator('.lineage-node[data-kind="run"]').inner_text()
