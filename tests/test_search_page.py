"""``bench serve``'s search page: through Flask's test client (uploads, picked queries, the
upload limit, files that are not images) and in headless Chromium (upload a face, read the
results back from the page). The browser part needs the Debian packages ``chromium`` and
``chromium-driver``."""

from __future__ import annotations

import base64
import contextlib
import io
import re
import threading

import numpy as np
import pytest
from inprocess import bench
from PIL import Image
from test_report_browser import CHROMIUM, DRIVER, FLAGS, ROOT

TINY = ["--dataset", "synthfaces", "--set", "dataset.identities=5", "--set", "dataset.images_per_identity=6",
        "--set", "dataset.val=1", "--set", "dataset.query=2"]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The search page of a DCBH run (12 bits, one epoch) on tiny synthetic faces, and a query image file."""
    from bench.retrieval.gallery import run_images
    from bench.retrieval.index import IndexKind
    from bench.retrieval.page import SearchPage
    from bench.retrieval.runs import open_run
    from bench.retrieval.store import index_for
    from bench.tracking.reading import StoreReader

    folder = tmp_path_factory.mktemp("search-page")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with contextlib.chdir(folder):
        code, _, err = bench("run", "--method", "dcbh", "--bits", "12", "--epochs", "1", "--tracking-uri", uri, *TINY)
        assert code == 0, err
        code, _, err = bench("run", "--method", "lsh", "--bits", "12", "--tracking-uri", uri, *TINY)
        assert code == 0, err
    handle = open_run(StoreReader(uri), "dcbh-12b-s0", folder / "work")
    search_page = SearchPage(handle, index_for(handle, IndexKind.FLAT), run_images(handle), k=5)
    query_id = int(handle.codes.query_ids[0])
    image = folder / "face.png"
    Image.fromarray(search_page.images.images[query_id].transpose(1, 2, 0)).save(image)
    notes = folder / "notes.png"
    notes.write_text("these are notes, not a face")
    return search_page, uri, image, notes


def test_page_searches_uploads_and_picked_queries(page):
    from bench.retrieval.page import create_app

    search_page, _, image, notes = page
    client = create_app(search_page, max_upload_bytes=200_000).test_client()
    home = client.get("/").get_data(as_text=True)
    assert 'id="upload-form"' in home and home.count("<option") == len(search_page.handle.codes.query)
    answer = client.post("/search", data={"image": (io.BytesIO(image.read_bytes()), "face.png"), "k": "5"},
                         content_type="multipart/form-data")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    distances = [int(d) for d in re.findall(r'data-distance="(\d+)"', html)]
    assert len(distances) == 5 and distances == sorted(distances) and distances[0] == 0  # the upload is a query image
    assert "encoding" in html and "searching" in html
    picked = client.post("/search", data={"query": "0", "k": "5"}).get_data(as_text=True)
    assert "same person" in picked or "other person" in picked
    expected = search_page.handle.codes
    same = [m == int(expected.query_labels[0]) for m in search_page.index.labels]
    assert ("same person" in picked) == any(same)
    thumb = client.get(f"/image/{int(expected.gallery_ids[0])}.png")
    assert thumb.status_code == 200 and thumb.data[:8] == b"\x89PNG\r\n\x1a\n"
    bad = client.post("/search", data={"image": (io.BytesIO(notes.read_bytes()), "notes.png")},
                      content_type="multipart/form-data")
    assert bad.status_code == 400 and "notes.png is not an image" in bad.get_data(as_text=True)
    big = client.post("/search", data={"image": (io.BytesIO(b"\0" * 300_000), "big.png")},
                      content_type="multipart/form-data")
    assert big.status_code == 413 and "larger than the 0.2 MiB limit" in big.get_data(as_text=True)
    assert "Traceback" not in bad.get_data(as_text=True) + big.get_data(as_text=True)


def test_serve_refuses_a_run_without_a_model(page):
    _, uri, _, _ = page
    code, _, err = bench("serve", "lsh-12b-s0", "--tracking-uri", uri)
    assert code == 2 and "has no model artifact" in err and len(err.strip().splitlines()) == 1


def page_text(driver) -> str:
    """The text of the page now loaded (read in one script call: no element goes stale)."""
    return driver.execute_script("return document.readyState === 'complete' && document.body ? document.body.innerText : ''")


@pytest.mark.browser
@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="headless Chromium is not installed (apt-get install -y chromium chromium-driver)")
def test_search_page_in_headless_chromium(page, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
    from werkzeug.serving import make_server

    from bench.retrieval.page import create_app

    search_page, _, image, notes = page
    server = make_server("127.0.0.1", 0, create_app(search_page, max_upload_bytes=2**20), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        driver.set_page_load_timeout(60)
        driver.get(f"http://127.0.0.1:{server.server_port}/")
        driver.find_element(By.ID, "image").send_keys(str(image))
        driver.find_element(By.ID, "upload").click()
        WebDriverWait(driver, 30).until(lambda d: "Query: face.png" in page_text(d))
        hits = driver.find_elements(By.CSS_SELECTOR, "#hits .hit")
        distances = [int(h.get_attribute("data-distance")) for h in hits]
        assert len(hits) == 5 and distances == sorted(distances) and distances[0] == 0
        assert all(h.get_attribute("data-identity") for h in hits)
        assert "encoding" in driver.find_element(By.ID, "timing").text
        loaded = driver.execute_script("return Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
        assert loaded and all(loaded)
        Select(driver.find_element(By.ID, "query")).select_by_index(0)
        driver.find_element(By.ID, "pick").click()
        WebDriverWait(driver, 30).until(lambda d: "Query: query" in page_text(d))
        marks = [h.get_attribute("class") for h in driver.find_elements(By.CSS_SELECTOR, "#hits .hit")]
        assert len(marks) == 5 and all(("same" in m) != ("other" in m) for m in marks)
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        driver.find_element(By.ID, "image").send_keys(str(notes))
        driver.find_element(By.ID, "upload").click()
        WebDriverWait(driver, 30).until(lambda d: "is not an image" in page_text(d))
        assert "is not an image" in driver.find_element(By.ID, "error").text
    finally:
        driver.quit()
        server.shutdown()
    png = base64.b64decode(shot["data"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    (ROOT / "test-artifacts" / "search-page.png").write_bytes(png)


def test_thumbnails_keep_the_pixels(page):
    search_page = page[0]
    picture = np.asarray(Image.open(io.BytesIO(search_page.images.thumbnail(0, size=64))))
    original = search_page.images.images[0].transpose(1, 2, 0)
    np.testing.assert_array_equal(picture[::2, ::2], original)  # 32 -> 64: every pixel doubled
