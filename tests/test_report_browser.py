"""The HTML report in a real browser: headless Chromium opens it from a file URL, finds the
leaderboard table, checks every image decoded, and saves a full-page screenshot as
``test-artifacts/report-browser.png``. Needs the Debian packages ``chromium`` and ``chromium-driver``."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--hide-scrollbars", "--window-size=1280,1000"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (CHROMIUM and DRIVER),
        reason="headless Chromium is not installed (apt-get install -y chromium chromium-driver)",
    ),
]


def test_html_report_renders_in_headless_chromium(cli, store, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    code, _, err = cli("run", "--method", "lsh", "--bits", "12,24", "--seeds", "0,1", "--tracking-uri", store)
    assert code == 0, err
    report = tmp_path / "report.html"
    code, _, err = cli("leaderboard", "--format", "html", "--out", str(report), "--tracking-uri", store,
                       "--reference", "lsh", "--gallery-queries", "3")
    assert code == 0, err

    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        driver.set_page_load_timeout(60)
        driver.get(report.as_uri())
        table = driver.find_element(By.ID, "leaderboard")
        headers = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
        assert headers == ["method", "12 bits", "24 bits"]
        [row] = table.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert row.text.startswith("lsh") and "95% CI" in row.text
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])")
        titles = [alt for alt, *_ in images]
        assert "map vs code length" in titles and "lsh · 12 bits" in titles and "lsh · 24 bits" in titles
        for alt, complete, width, height in images:
            assert complete and width > 0 and height > 0, f"image '{alt}' did not load"
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    finally:
        driver.quit()
    png = base64.b64decode(shot["data"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    shots = ROOT / "test-artifacts"
    shots.mkdir(exist_ok=True)
    (shots / "report-browser.png").write_bytes(png)
