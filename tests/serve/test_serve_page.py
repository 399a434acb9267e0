"""The web page in headless Chromium (Debian's ``chromium``, driven by Playwright): a transmission end to end."""

from __future__ import annotations

import base64
import io
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import TOKEN, start_server

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'gesco[serve]'")
pytestmark = pytest.mark.slow


def chromium_path() -> str | None:
    """$GESCO_CHROMIUM, else Debian's ``chromium`` (or ``chromium-browser``) on the PATH."""
    given = os.environ.get("GESCO_CHROMIUM")
    return given or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    # CI sets GESCO_REQUIRE_BROWSER=1 once it has installed chromium: there a missing browser is a failure.
    required = os.environ.get("GESCO_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            raise
        pytest.skip("playwright is not installed: pip install playwright (no 'playwright install' needed)")
    executable = chromium_path()
    if executable is None:
        if required:
            pytest.fail("GESCO_REQUIRE_BROWSER=1 but no chromium on the PATH (set GESCO_CHROMIUM)")
        pytest.skip("no chromium on the PATH: apt-get install -y chromium, or set GESCO_CHROMIUM")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--headless", "--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    # Sixty steps make GESCO's stage last long enough for the page to show it while it runs.
    log = tmp_path_factory.mktemp("log") / "serve.log"
    server = start_server(tiny_model, log, "--token", TOKEN, "--sdm", str(tiny_model), "--steps", "60")
    yield server
    assert server.stop()


def shown_images(page) -> dict[str, np.ndarray]:
    sources = page.eval_on_selector_all("#results img", "images => images.map(i => [i.dataset.column, i.src])")
    return {
        column: np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB"))
        for column, src in sources
    }


def test_a_scene_is_transmitted_and_regenerated_in_the_browser(browser, server, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server.url}/?token={TOKEN}")
    page.wait_for_selector("#channel option[value=unit-power]", state="attached")
    page.select_option("#channel", "unit-power")
    page.select_option("#fading", "rayleigh")
    page.fill("#quality", "5")
    page.fill("#scene", "1000003")
    page.click("#transmit")
    # Progress is shown while the receivers sample.
    page.wait_for_function("document.querySelector('#stage').textContent.includes('regenerating with')")
    assert page.is_visible("#progress")
    page.wait_for_selector("body[data-state=done]", timeout=120_000)
    page.screenshot(path=tmp_path / "page.png", full_page=True)
    images = shown_images(page)
    assert set(images) == {"original", "received map", "denoised map", "GESCO", "SDM-style"}
    for column, picture in images.items():
        assert picture.shape == (16, 32, 3) and picture.std() > 1, column  # present and not blank
    assert "sigma" in page.text_content("#stage") and errors == []
    assert Image.open(tmp_path / "page.png").size[0] >= 1280


def test_an_uploaded_label_map_and_a_refused_quality_in_the_browser(browser, server, tmp_path):
    labels = np.full((16, 32), 7, dtype=np.uint8)  # road
    labels[:6] = 23  # sky
    labels[8:12, 10:20] = 26  # a car
    Image.fromarray(labels).save(tmp_path / "labels.png")
    page = browser.new_page()
    page.goto(f"{server.url}/?token={TOKEN}")
    page.wait_for_selector("#channel option[value=awgn]", state="attached")
    page.check("input[name=source][value=upload]")
    page.set_input_files("#upload", str(tmp_path / "labels.png"))
    page.fill("#quality", "7")  # not one of the paper's PSNR labels
    page.click("#transmit")
    page.wait_for_selector("body[data-state=failed]")
    assert "unknown PSNR label 7" in page.text_content("#stage")
    page.fill("#quality", "5")
    page.click("#transmit")
    page.wait_for_selector("body[data-state=done]", timeout=120_000)
    images = shown_images(page)
    assert "original" not in images and images["GESCO"].std() > 1
    received = images["received map"]
    assert (received[:6] == received[0, 0]).all(axis=-1).mean() > 0.5  # the sky rows arrive mostly as one class
