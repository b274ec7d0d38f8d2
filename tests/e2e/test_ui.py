"""The web UI in a real browser: Playwright drives Debian's chromium against ``cairn server``.

One server per module, started as ``cairn server --port 0`` on 127.0.0.1 in a subprocess and
seeded through its REST API (runs, curves, artifacts); each test opens its own browser page.
Screenshots land in ``test-output/ui/``. Without ``/usr/bin/chromium`` the tests fail, unless
``CAIRN_TEST_SKIP_BROWSER=1`` says to skip them.
"""

from __future__ import annotations

import json
import re
import struct
import time
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from playwright.sync_api import Page

pytestmark = pytest.mark.slow

# Playwright's wait_for_function evaluates strings, which the UI's CSP (no eval) forbids; the
# header itself is checked in tests/server/test_ui_routes.py (see tests/e2e/conftest.py).
BYPASS_CSP = True
HOSTILE_NAME = "<img src=x onerror=\"document.title='pwned'\">"
MODEL = "e2e-prices"
SERIES_RGB = (47, 111, 222)  # the first series colour of the charts (ui/src/components/chart.ts)
RIDGE_GROUP_RGB = (232, 89, 12)  # the second


@dataclass
class Seeded:
    url: str
    experiment_id: str
    runs: dict[str, str]  # run name -> run id


def _png(width: int = 48, height: int = 32) -> bytes:
    """A small gradient PNG, written by hand so the test needs no imaging library."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 5 % 256, y * 8 % 256, 160)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _seed(url: str, workdir: Path) -> Seeded:
    from cairn.entities import Metric, Param, RunTag
    from cairn.tracking.client import TrackingClient

    client = TrackingClient(url)
    experiment_id = client.create_experiment("e2e-ui")
    runs: dict[str, str] = {}
    plans = [
        ("ridge-a", "ridge", "0.1", 0.2),
        ("lasso-b", "lasso", "1.0", 0.4),
        ("ridge-c", "ridge", "10.0", 0.6),
        (HOSTILE_NAME, "tree", "0.5", 0.8),
    ]
    now = int(time.time() * 1000)
    for index, (name, model, alpha, rmse) in enumerate(plans):
        run = client.create_run(experiment_id, now + index * 1000, {"team": "pricing"}, name)
        run_id = run.info.run_id
        runs[name] = run_id
        curve = [
            Metric("loss", 1.0 / (step + 1) + rmse, now + step * 10, step) for step in range(300)
        ]
        client.log_batch(
            run_id,
            metrics=[*curve, Metric("rmse", rmse, now, 0), Metric("r2", 1 - rmse, now, 0)],
            params=[Param("model", model), Param("alpha", alpha), Param("layers", "3")],
            tags=[RunTag("stage", "candidate" if index == 0 else "dev")],
        )
        client.set_terminated(run_id)
    first = runs["ridge-a"]
    client.log_text(first, "trained on v3 data\nsecond line", "notes.txt")
    client.log_text(first, json.dumps({"features": ["area", "rooms"], "depth": 3}), "config.json")
    client.log_text(first, "optimizer: adam\nlayers: [64, 32]\n", "params.yaml")
    client.log_text(first, "area,rooms,price\n50,2,300\n80,3,450\n", "data/sample.csv")
    client.log_text(
        first,
        "artifact_path: model\nflavors:\n  python_function:\n    loader_module: cairn.sklearn\n"
        f'run_id: {first}\nsignature:\n  inputs: \'[{{"name": "area", "type": "double"}}]\'\n',
        "model/MLmodel",
    )
    image = workdir / "plot.png"
    image.write_bytes(_png())
    client.log_artifact(first, image, "plots")

    from cairn.models.registry.client import RegistryClient

    registry = RegistryClient(url)
    registry.create_registered_model(MODEL, description="Predicts prices")
    for name in ("ridge-a", "lasso-b"):
        registry.create_model_version(MODEL, f"runs:/{runs[name]}/model", runs[name])
    return Seeded(url, experiment_id, runs)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, ui_server: Callable[[Path], str]) -> Seeded:
    workdir = tmp_path_factory.mktemp("ui-server")
    return _seed(ui_server(workdir / "store"), workdir)


def _grid_names(page: Page) -> list[str]:
    names: list[str] = page.locator(".grid-row .grid-cell.pinned a").all_inner_texts()
    return names


def _wait_rows(page: Page, count: int) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('.grid-row .grid-cell.pinned a').length === n", arg=count
    )


def _series_pixels(page: Page, selector: str, rgb: tuple[int, int, int] = SERIES_RGB) -> int:
    """Pixels of a series colour (the first, by default) on the canvas under ``selector``."""
    count: int = page.eval_on_selector(
        selector,
        """(canvas, rgb) => {
            const {width, height} = canvas;
            const data = canvas.getContext('2d').getImageData(0, 0, width, height).data;
            let n = 0;
            for (let i = 0; i < data.length; i += 4) {
                if (Math.abs(data[i] - rgb[0]) < 40 && Math.abs(data[i + 1] - rgb[1]) < 40
                    && Math.abs(data[i + 2] - rgb[2]) < 40 && data[i + 3] > 100) n++;
            }
            return n;
        }""",
        list(rgb),
    )
    return count


# -- experiments --------------------------------------------------------------------------------


def test_experiments_page_lists_creates_renames_and_deletes(seeded: Seeded, page: Page) -> None:
    page.goto(seeded.url + "/")
    row = page.locator("table.experiments tr", has_text="e2e-ui")
    assert row.locator("td").nth(2).inner_text() == "4"  # runs
    assert row.locator("td").nth(3).inner_text() != ""  # last activity

    page.get_by_label("New experiment name").fill("made-in-browser")
    page.get_by_role("button", name="Create").click()
    made = page.locator("table.experiments tr", has_text="made-in-browser")
    made.wait_for()
    row = page.locator(f"tr[data-experiment-id='{made.get_attribute('data-experiment-id')}']")
    row.get_by_role("button", name="Rename").click()
    row.get_by_label("New name").fill("renamed-in-browser")
    row.get_by_role("button", name="Save").click()
    row.get_by_role("link", name="renamed-in-browser").wait_for()
    row.get_by_role("button", name="Delete").click()
    row.get_by_role("button", name="Yes, delete").click()
    row.wait_for(state="detached")

    page.get_by_label("New experiment name").fill("e2e-ui")  # taken: the server says so
    page.get_by_role("button", name="Create").click()
    assert "already exists" in page.get_by_role("alert").inner_text()


# -- the runs table -----------------------------------------------------------------------------


def test_runs_table_filters_with_the_search_language(seeded: Seeded, page: Page) -> None:
    page.goto(f"{seeded.url}/experiments/{seeded.experiment_id}")
    _wait_rows(page, 4)
    assert sorted(_grid_names(page)) == sorted(seeded.runs)
    assert page.locator(".status").inner_text() == "4 runs"

    page.get_by_label("Filter runs").fill("params.model = 'ridge' and metrics.rmse < 0.5")
    page.keyboard.press("Enter")
    _wait_rows(page, 1)
    assert _grid_names(page) == ["ridge-a"]
    assert page.locator(".status").inner_text() == "1 run match"
    assert "filter=params.model" in page.url

    page.reload()  # the URL alone restores the view
    _wait_rows(page, 1)
    assert _grid_names(page) == ["ridge-a"]
    page.go_back()
    _wait_rows(page, 4)
    assert page.get_by_label("Filter runs").input_value() == ""


def test_an_invalid_filter_shows_the_servers_message_inline(seeded: Seeded, page: Page) -> None:
    page.goto(f"{seeded.url}/experiments/{seeded.experiment_id}")
    page.get_by_label("Filter runs").fill("metrics.rmse 0.3")
    page.keyboard.press("Enter")
    error = page.locator(".filter-error [role=alert]")
    error.wait_for()
    assert "expected a comparison operator" in error.inner_text()
    assert "position 13" in error.inner_text()
    assert page.locator(".grid-row").count() == 0


def test_sorting_by_a_metric_column_asks_the_server(seeded: Seeded, page: Page) -> None:
    page.goto(f"{seeded.url}/experiments/{seeded.experiment_id}")
    page.locator(".grid-row").first.wait_for()
    page.locator(".grid-th[data-column='metrics.rmse']").click()
    page.wait_for_url(re.compile(r"order=metrics\.%60rmse%60\+DESC"))
    page.locator(".grid-th[aria-sort='descending'][data-column='metrics.rmse']").wait_for()
    _wait_rows(page, 4)
    assert _grid_names(page) == [HOSTILE_NAME, "ridge-c", "lasso-b", "ridge-a"]
    page.locator(".grid-th[data-column='metrics.rmse']").click()
    page.locator(".grid-th[aria-sort='ascending'][data-column='metrics.rmse']").wait_for()
    _wait_rows(page, 4)
    assert _grid_names(page) == ["ridge-a", "lasso-b", "ridge-c", HOSTILE_NAME]


def test_column_chooser_adds_a_tag_column(seeded: Seeded, page: Page) -> None:
    page.goto(f"{seeded.url}/experiments/{seeded.experiment_id}")
    page.locator(".grid-row").first.wait_for()
    assert page.locator(".grid-th[data-column='tags.stage']").count() == 0
    page.get_by_role("button", name="Columns").click()
    page.locator(".chooser input[data-column='tags.stage']").check()
    page.locator(".grid-th[data-column='tags.stage']").wait_for()
    assert "tags.stage" in page.url
    page.locator(".grid-row .grid-cell", has_text="candidate").wait_for()


def test_untrusted_strings_are_shown_as_text(seeded: Seeded, page: Page) -> None:
    page.goto(f"{seeded.url}/experiments/{seeded.experiment_id}")
    page.locator(".grid-row").first.wait_for()
    assert HOSTILE_NAME in _grid_names(page)
    assert page.locator(".grid img").count() == 0
    assert page.title() != "pwned"


# -- a run --------------------------------------------------------------------------------------


def test_run_page_shows_params_metrics_and_system_info(seeded: Seeded, page: Page) -> None:
    page.goto(f"{seeded.url}/runs/{seeded.runs['ridge-a']}")
    page.locator("table.metrics-summary").wait_for()
    loss = page.locator("table.metrics-summary tr", has_text="loss").locator("td")
    assert loss.nth(1).inner_text() == "0.203333"  # latest: 1/300 + 0.2
    assert loss.nth(2).inner_text() == "0.203333"  # min
    assert loss.nth(3).inner_text() == "1.2"  # max: 1/1 + 0.2
    assert loss.nth(5).inner_text() == "300"
    assert page.locator("table.kv tr", has_text="alpha").inner_text().split() == ["alpha", "0.1"]
    assert (
        page.locator("section", has_text="System info")
        .locator("td", has_text="mlflow.runName")
        .count()
        == 1
    )
    assert page.locator("h1").inner_text().startswith("ridge-a")


def test_run_page_draws_a_metric_chart(seeded: Seeded, page: Page) -> None:
    page.goto(f"{seeded.url}/runs/{seeded.runs['ridge-a']}")
    page.get_by_role("link", name="Charts").click()
    canvas = page.locator(".chart[data-metric='loss'] canvas")
    canvas.wait_for()
    page.wait_for_timeout(200)  # the first frame
    assert _series_pixels(page, ".chart[data-metric='loss'] canvas") > 200
    assert "tab=charts" in page.url

    page.get_by_label("X axis").select_option("relative")
    page.wait_for_url(re.compile("x=relative"))
    page.locator(".chart[data-metric='loss'] canvas").wait_for()
    assert page.get_by_label("X axis").input_value() == "relative"
    page.get_by_label("Log scale").check()
    page.wait_for_url(re.compile("log=1"))
    page.locator(".chart[data-metric='loss'] canvas").wait_for()
    page.wait_for_timeout(200)
    assert _series_pixels(page, ".chart[data-metric='loss'] canvas") > 200


def test_artifacts_browser_previews_text_csv_mlmodel_and_images(seeded: Seeded, page: Page) -> None:
    page.goto(f"{seeded.url}/runs/{seeded.runs['ridge-a']}?tab=artifacts")
    tree = page.get_by_role("navigation", name="Artifacts")
    tree.get_by_role("button", name="notes.txt").click()
    preview = page.locator(".preview")
    preview.locator("pre", has_text="trained on v3 data").wait_for()
    assert "artifact=notes.txt" in page.url

    tree.get_by_role("button", name="data/").click()
    tree.get_by_role("button", name="sample.csv").click()
    preview.locator("table.csv").wait_for()
    assert preview.locator("table.csv th").all_inner_texts() == ["area", "rooms", "price"]
    assert preview.locator("table.csv tbody tr").count() == 2

    tree.get_by_role("button", name="model/").click()
    tree.get_by_role("button", name="MLmodel").click()
    preview.locator("table.mlmodel").wait_for()
    assert "python_function" in preview.locator("table.mlmodel").inner_text()
    assert "area: double" in preview.locator("table.mlmodel").inner_text()

    tree.get_by_role("button", name="plots/").click()
    tree.get_by_role("button", name="plot.png").click()
    image = preview.locator("img.artifact-image")
    image.wait_for()
    page.wait_for_function(
        "() => { const i = document.querySelector('img.artifact-image');"
        " return i && i.complete && i.naturalWidth === 48; }"
    )

    page.reload()  # ?artifact= reopens the folder and the preview
    page.locator("img.artifact-image").wait_for()


# -- compare ------------------------------------------------------------------------------------


def test_compare_two_runs_from_the_table(seeded: Seeded, page: Page) -> None:
    page.goto(f"{seeded.url}/experiments/{seeded.experiment_id}")
    _wait_rows(page, 4)
    page.get_by_label("Select ridge-a").check()
    page.get_by_label("Select lasso-b").check()
    assert "sel=" in page.url
    page.get_by_role("button", name="Compare (2)").click()
    page.wait_for_url(re.compile(r"/compare\?runs="))

    alpha = page.locator("table.diff tr[data-key='params.alpha']")
    alpha.wait_for()
    assert "differs" in (alpha.get_attribute("class") or "")
    layers = page.locator("table.diff tr[data-key='params.layers']")
    assert "differs" not in (layers.get_attribute("class") or "")
    assert layers.locator("td").all_inner_texts() == ["layers", "3", "3"]

    page.get_by_label("Only rows that differ").check()
    layers.wait_for(state="detached")

    assert page.locator(".parcoords canvas").count() == 1
    chart = ".chart[data-metric='loss'] canvas"
    page.locator(chart).wait_for()
    page.wait_for_timeout(200)
    assert _series_pixels(page, chart) > 200  # the first run's curve
    assert page.locator(".chart[data-metric='loss'] .u-legend").inner_text().count("-b") >= 1


# -- models -------------------------------------------------------------------------------------


def test_models_page_sets_and_removes_an_alias(seeded: Seeded, page: Page) -> None:
    page.goto(f"{seeded.url}/models")
    page.get_by_role("link", name=MODEL).click()
    page.wait_for_url(re.compile(f"/models/{MODEL}$"))
    versions = page.locator("table.versions tbody tr")
    versions.first.wait_for()
    assert versions.count() == 2
    source = page.locator("table.versions tr[data-version='1'] a[href^='/runs/']")
    assert source.inner_text() == seeded.runs["ridge-a"][:12]
    assert page.get_by_text("No aliases yet.").count() == 1

    page.get_by_label("Alias").fill("champion")
    page.get_by_label("Version").select_option("1")
    page.get_by_role("button", name="Set alias").click()
    page.locator("table.aliases tr[data-alias='champion']").wait_for()
    assert page.locator("table.aliases tr[data-alias='champion']").inner_text().split()[:2] == [
        "@champion",
        "v1",
    ]
    assert "@champion" in page.locator("table.versions tr[data-version='1']").inner_text()

    page.goto(f"{seeded.url}/models?q=prices")  # the list shows the alias too
    assert "@champion → v1" in page.locator("table.models", has_text=MODEL).inner_text()

    page.go_back()
    page.locator("table.aliases tr[data-alias='champion']").get_by_role(
        "button", name="Remove"
    ).click()
    page.get_by_text("No aliases yet.").wait_for()

    source.click()  # the version's source run
    page.wait_for_url(re.compile(f"/runs/{seeded.runs['ridge-a']}"))
    page.locator("h1", has_text="ridge-a").wait_for()


def test_compare_groups_curves_by_a_param(seeded: Seeded, page: Page) -> None:
    ids = ",".join(seeded.runs.values())
    page.goto(f"{seeded.url}/compare?runs={ids}&metrics=loss")
    page.get_by_label("Group curves by").select_option("model")
    page.wait_for_url(re.compile("group=model"))
    legend = page.locator(".chart[data-metric='loss'] .u-legend")
    legend.wait_for()
    text = legend.inner_text()
    assert "ridge (2 runs)" in text
    assert "lasso (1 run)" in text
    assert "tree (1 run)" in text
    assert "(max)" not in text  # the min-max band's edges are not listed
    page.wait_for_timeout(200)
    # ridge's mean (0.4 + 1/step) hides lasso's identical curve: look for its own colour.
    assert _series_pixels(page, ".chart[data-metric='loss'] canvas", RIDGE_GROUP_RGB) > 200
