"""Real headless Chromium (Debian's package) through Playwright, axe-core checks, and the
screenshots the README shows. Never `playwright install`: its browser download is not
reachable here, so the system browser is launched by path."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.marks import require_tool

# The README's screenshots are refreshed only on purpose (`make screenshots`); a test run
# writes them to a scratch folder so it never dirties the checkout.
SCREENSHOTS = Path(
    os.environ.get("ABACUS_TEST_SCREENSHOTS") or Path(tempfile.gettempdir()) / "abacus-screenshots"
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
VIEWPORT = {"width": 1280, "height": 800}


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched browser (fails under CI=true when chromium is missing, else skips)."""
    path = require_tool("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def assert_accessible(page: Any, shot: str | None = None) -> None:
    """axe-core on the page as it is now: zero violations (every rule axe runs by default,
    WCAG 2.1 A/AA and best practices). ``shot`` also saves a full-page screenshot."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"
    if shot is not None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{shot}.png"), full_page=True)
