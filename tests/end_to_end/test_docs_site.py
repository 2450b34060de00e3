"""The documentation site as a reader sees it: the built tutorial opened in headless
Chromium shows math that KaTeX rendered (offline, from the copy inside the package) and a
tensor-network diagram as SVG; a screenshot is saved.

``.ci/run`` builds the site (``mkdocs build --strict --site-dir site``) before the suite;
where no build newer than the pages is there, the test builds one itself when MkDocs is
installed. It skips, saying why, where selenium, Chromium or MkDocs is missing."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import ROOT

SOURCES = [ROOT / "mkdocs.yml", *sorted((ROOT / "docs").rglob("*"))]
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--window-size=1280,2000")


def built_site(tmp: Path) -> Path:
    """The site .ci/run built, if it is newer than every page; else a fresh build."""
    site = ROOT / "site"
    tutorial = site / "tutorial" / "index.html"
    newest = max(p.stat().st_mtime for p in SOURCES if p.is_file())
    if tutorial.is_file() and tutorial.stat().st_mtime >= newest:
        return site
    pytest.importorskip("mkdocs", reason="MkDocs is not installed (pip install '.[docs]')")
    pytest.importorskip("material", reason="mkdocs-material is not installed")
    out = tmp / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """The built site over HTTP on localhost, as a browser reads a published one."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(built_site(tmp_path)))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    webdriver = pytest.importorskip("selenium.webdriver",
                                    reason="selenium is not installed (pip install '.[test]')")
    binary = next((shutil.which(name) for name in CHROMIUM if shutil.which(name)), None)
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        pytest.skip("no Chromium and chromedriver here (.ci/run installs Debian's chromium "
                    "and chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.browser
def test_the_tutorial_shows_rendered_math_and_a_diagram(served, browser, tmp_path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{served}/tutorial/")
    WebDriverWait(browser, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".arithmatex .katex"))
    rendered = browser.find_elements(By.CSS_SELECTOR, ".arithmatex .katex")
    marked = browser.find_elements(By.CSS_SELECTOR, ".arithmatex")
    assert len(rendered) == len(marked) >= 10, (len(rendered), len(marked))
    assert not browser.find_elements(By.CSS_SELECTOR, ".katex-error")
    # the fonts came from the site itself (no network): KaTeX measured its glyphs
    assert browser.execute_script(
        "return document.fonts.check('12px KaTeX_Main')"), "KaTeX's fonts did not load"
    nodes = browser.find_elements(By.CSS_SELECTOR, "article svg g.node")
    assert nodes and nodes[0].get_attribute("data-name") == "x"
    shot = tmp_path / "tutorial.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
