"""The playground in a real headless Chromium (Debian's chromium and chromium-driver,
driven by selenium): type a program, derive it, see the rendered math and the diagram,
copy the export, run a check (random inputs and an uploaded .npy), see a syntax error at
its column. One browser for the module.

Run as a script (``python tests/tools/test_playground_browser.py``) it writes the
screenshot the documentation shows, docs/assets/playground.png.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from playground_server import running

from tensorcalc.tools.playground.examples import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:  # pragma: no cover - the test extra installs it
    webdriver = None

pytestmark = pytest.mark.skipif(
    webdriver is None or CHROMIUM is None or DRIVER is None,
    reason="no browser: needs selenium (the test extra) and Debian's chromium and "
           "chromium-driver (.ci/run installs them)")

MLP = EXAMPLES["MLP"]["program"]


def browser(user_data: str):
    """Headless Chromium with the flags a machine without a network needs."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--window-size=1500,950", f"--user-data-dir={user_data}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


@contextlib.contextmanager
def opened():
    """The playground served and open in a browser, loaded and showing its first example."""
    with running() as server, tempfile.TemporaryDirectory() as profile:
        driver = browser(profile)
        try:
            driver.get(server.url)
            wait_for(driver, lambda d: d.find_element(By.TAG_NAME, "body")
                     .get_attribute("data-ready") == "true")
            yield driver
        finally:
            driver.quit()


@pytest.fixture(scope="module")
def page():
    """One browser for the module."""
    with opened() as driver:
        yield driver


def wait_for(driver, condition, seconds: float = 15):
    return WebDriverWait(driver, seconds, poll_frequency=0.02).until(condition)


def by_id(driver, name: str):
    return driver.find_element(By.ID, name)


def type_program(driver, text: str) -> None:
    editor = by_id(driver, "program")
    editor.send_keys(Keys.CONTROL, "a")
    editor.send_keys(Keys.DELETE)
    editor.send_keys(text)


def derive(driver, program: str, wrt: str, kind: str) -> float:
    """Type and derive; the seconds from the click to the rendered result."""
    type_program(driver, program)
    wrt_box = by_id(driver, "wrt")
    wrt_box.clear()
    wrt_box.send_keys(wrt)
    Select(by_id(driver, "kind")).select_by_value(kind)
    driver.execute_script("document.body.dataset.renderMs = ''")
    started = time.perf_counter()
    by_id(driver, "run").click()
    wait_for(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute(
        "data-render-ms"))
    return time.perf_counter() - started


def test_the_first_example_is_shown_on_load(page):
    assert by_id(page, "program").get_attribute("value") == EXAMPLES["y = Wx"]["program"]
    assert "dy_dW[i,p,q] = delta[i,p] x[q]" in by_id(page, "result-text").text


def test_derive_the_mlp_gradient_shows_math_text_diagram_and_python(page):
    seconds = derive(page, MLP, "W", "gradient")
    in_page = float(page.find_element(By.TAG_NAME, "body").get_attribute("data-render-ms"))
    print(f"\nclick to rendered MLP gradient: {in_page:.0f} ms in the page "
          f"(performance.now), {1000 * seconds:.0f} ms seen by selenium")
    assert "dL_dW[p,q] = H_bar[k,q] X[k,p] (1 - H[k,q]^2)" in by_id(page, "result-text").text
    math = by_id(page, "result-math")
    assert math.find_elements(By.CSS_SELECTOR, ".katex-display .katex-html")
    assert "∂L" in math.text.replace("\n", "") and "tanh" in math.text
    assert page.execute_script(
        "return document.fonts.check('16px KaTeX_Main')"), "KaTeX's fonts were loaded"
    nodes = by_id(page, "diagram").find_elements(By.CSS_SELECTOR, "svg g.node")
    assert nodes and by_id(page, "diagram").find_element(By.TAG_NAME, "svg").size["width"] > 100
    assert "sum[d](X[b,d] W[d,h])" in by_id(page, "explain").text
    assert "import numpy" in by_id(page, "python").text
    assert "program=" in by_id(page, "share").get_attribute("href")


def test_copy_puts_the_export_on_the_clipboard(page):
    page.execute_cdp_cmd("Browser.grantPermissions", {
        "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"],
        "origin": page.execute_script("return location.origin")})
    by_id(page, "copy").click()
    wait_for(page, lambda d: by_id(d, "copied").text.startswith("copied"))
    pasted = page.execute_async_script(
        "const done = arguments[0]; navigator.clipboard.readText().then(done, e => done('' + e))")
    assert pasted == by_id(page, "python").get_attribute("textContent")


def test_check_with_random_inputs_agrees(page):
    derive(page, MLP, "W", "gradient")
    sizes = by_id(page, "sizes")
    sizes.clear()
    sizes.send_keys("b=4,d=3,h=5,o=2")
    by_id(page, "check").click()
    result = by_id(page, "check-result")
    wait_for(page, lambda d: result.get_attribute("data-verdict"))
    assert result.get_attribute("data-verdict") == "agree", result.text
    assert result.text.startswith("agree: largest error")


def test_check_with_an_uploaded_array(page, tmp_path):
    derive(page, "y[i] = W[i,j] x[j]", "x", "derivative")
    np.save(tmp_path / "W.npy", np.arange(10.0).reshape(2, 5))
    by_id(page, "sizes").clear()
    by_id(page, "files").send_keys(str(tmp_path / "W.npy"))
    by_id(page, "check").click()
    result = by_id(page, "check-result")
    wait_for(page, lambda d: result.get_attribute("data-verdict"))
    assert "dy_dx: shape (2, 5)" in result.text and result.get_attribute(
        "data-verdict") == "agree", result.text
    page.execute_script("document.getElementById('files').value = ''")


def test_a_syntax_error_is_shown_at_its_column_as_you_type(page):
    type_program(page, "y[i] = W[i,j x[j]")
    error = by_id(page, "error")
    wait_for(page, lambda d: error.is_displayed() and error.get_attribute("data-column"))
    assert (error.get_attribute("data-line"), error.get_attribute("data-column")) == ("1", "14")
    assert "line 1, column 14" in error.text
    caret_line = error.text.split("\n")[-1]
    assert caret_line.index("^") == 4 + 13  # under column 14 of the line shown above it
    error.click()  # puts the cursor on the error
    assert page.execute_script("return document.getElementById('program').selectionStart") == 13
    type_program(page, "y[i] = W[i,j] x[j]")
    wait_for(page, lambda d: not error.is_displayed())


def test_ctrl_enter_in_the_editor_derives(page):
    type_program(page, "s = x[i] x[i]")
    by_id(page, "wrt").clear()
    by_id(page, "wrt").send_keys("x")
    by_id(page, "program").send_keys(Keys.CONTROL, Keys.ENTER)
    wait_for(page, lambda d: "ds_dx" in by_id(d, "result-text").text)
    assert by_id(page, "program").get_attribute("value") == "s = x[i] x[i]"


def test_an_example_and_a_shared_link_load_the_program(page):
    Select(by_id(page, "examples")).select_by_visible_text("convolution")
    wait_for(page, lambda d: "dy_dK" in by_id(d, "result-text").text)
    link = by_id(page, "share").get_attribute("href")
    page.get(link)
    wait_for(page, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    assert by_id(page, "program").get_attribute("value") == EXAMPLES["convolution"]["program"]
    assert "dy_dK" in by_id(page, "result-text").text


def test_a_screenshot_of_the_page(page, tmp_path):
    derive(page, MLP, "W", "gradient")
    path = tmp_path / "playground.png"
    page.save_screenshot(str(path))
    assert path.read_bytes().startswith(b"\x89PNG")


if __name__ == "__main__":  # write the documentation's screenshot
    with opened() as driver:
        Select(by_id(driver, "examples")).select_by_visible_text("MLP")
        wait_for(driver, lambda d: "dL_dW" in by_id(d, "result-text").text)
        by_id(driver, "check").click()
        wait_for(driver, lambda d: by_id(d, "check-result").get_attribute("data-verdict"))
        target = ROOT / "docs" / "assets" / "playground.png"
        target.parent.mkdir(exist_ok=True)
        driver.save_screenshot(str(target))
        print(f"wrote {target.relative_to(ROOT)}", file=sys.stderr)
