"""Browser-test plumbing shared by the UI modules: a real ``cairn server`` per module and
Debian's chromium driven by Playwright, one page per test, screenshots in ``test-output/ui/``.

Without ``/usr/bin/chromium`` the browser tests fail, unless ``CAIRN_TEST_SKIP_BROWSER=1``
says to skip them. A module sets ``BYPASS_CSP = True`` when its checks need Playwright's
string evaluation, which the UI's CSP (no eval) forbids.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-output" / "ui"
BUNDLE = REPO / "src" / "cairn" / "server" / "static" / "index.html"
START_TIMEOUT_S = 30


def _start_server(store: Path) -> tuple[subprocess.Popen[str], str]:
    cairn = Path(sys.executable).with_name("cairn")
    process = subprocess.Popen(
        [
            str(cairn),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--backend-store-uri",
            str(store),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")},
    )
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        found = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        if found:
            return process, found.group(1)
        if not line and process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"cairn server did not start: {process.stdout.read()}")


@pytest.fixture(scope="module")
def ui_server() -> Iterator[Callable[[Path], str]]:
    """Starts ``cairn server --port 0`` on a store folder and gives its URL; the servers a
    module started are stopped when it ends."""
    if not BUNDLE.is_file():
        pytest.fail(
            f"The web UI is not built ({BUNDLE} is missing): run scripts/test.sh, or "
            "'cd ui && npm ci && npm run build'",
            pytrace=False,
        )
    processes: list[subprocess.Popen[str]] = []

    def start(store: Path) -> str:
        process, url = _start_server(store)
        processes.append(process)
        return url

    try:
        yield start
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (install Debian's chromium package; scripts/test.sh does)"
        if os.environ.get("CAIRN_TEST_SKIP_BROWSER") == "1":
            pytest.skip(f"{reason}; CAIRN_TEST_SKIP_BROWSER=1")
        pytest.fail(reason, pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # launch() gives every browser a fresh temporary profile.
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def shot() -> Callable[[Page, str], None]:
    """Takes a screenshot mid-test (the page fixture takes one where the test ends)."""
    return screenshot


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    bypass_csp = bool(getattr(request.module, "BYPASS_CSP", False))
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=bypass_csp)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
        screenshot(page, request.node.name)
    finally:
        context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"
