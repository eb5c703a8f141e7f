"""Open an HTML file in headless Chromium the way an auditor would, offline: no request may leave the machine."""

import contextlib
import shutil

import pytest


@contextlib.contextmanager
def offline_page(html, width: int = 1300):
    """Yield a Playwright page showing `html` (a path); fail if any request left for the network."""
    playwright = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": width, "height": 900})
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(html.as_uri())
        page.wait_for_load_state("networkidle")
        leaving = [u for u in requests if not u.startswith(("file:", "data:", "about:"))]
        assert not leaving, f"{html.name} fetched from the web: {leaving}"  # it must open offline, for auditors
        try:
            yield page
        finally:
            browser.close()
