"""The acrostic page of `rnnkit serve`, driven in headless Chromium: a click writes a poem, a bad head shows the
API's message.

The service runs in a thread on a loopback port; Playwright drives Debian's Chromium (its own browser download
does not work here). scripts/setup.sh installs the package when it is missing; without it this test fails, it
is never skipped. ``RNNKIT_SCREENSHOT=docs/serve_page.png`` also saves the README's screenshot.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

CHROMIUM = os.environ.get("RNNKIT_CHROMIUM", "/usr/bin/chromium")
# as root (--no-sandbox), and with no connections to Google's hosts, which this machine's closed network refuses
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
INSTALL_HINT = (
    f"Debian's Chromium is needed at {CHROMIUM} for the page test (Playwright's own browser download does not work "
    "here): DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium "
    "(bash scripts/setup.sh does it when apt-get is available; RNNKIT_CHROMIUM=PATH points at another Chromium)"
)


@pytest.fixture(scope="module")
def service_url():
    """The real service (shipped poetry model) on a free loopback port, served by uvicorn in a thread."""
    import uvicorn

    from rnnkit.serve import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            pytest.fail(f"the service did not answer {url}/health within 30 s")
        time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="module")
def browser():
    if not (os.path.isfile(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.fail(INSTALL_HINT, pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, service_url):
    """A fresh page on the service; it records every request it makes, to check that it stays on the service."""
    context = browser.new_context(viewport={"width": 900, "height": 490}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.requests = []
    page.on("request", lambda request: page.requests.append(request.url))
    page.goto(service_url + "/")
    yield page
    context.close()


def test_a_click_writes_an_acrostic_poem(page, service_url, tmp_path):
    page.fill("#acrostic", "春花秋月")
    page.select_option("#form", "7")
    page.fill("#seed", "0")
    page.click("#write")
    poem = page.locator("#poems pre.poem").first
    poem.wait_for()
    lines = [line for line in poem.inner_text().splitlines() if line.strip()]
    assert [line.strip()[0] for line in lines] == list("春花秋月"), lines
    assert all(sum(ch.isalpha() for ch in line) == 7 for line in lines), lines  # 7 characters, then punctuation
    assert page.inner_text("#error").strip() == ""
    # self-contained: the page, its script and its one API call never leave the service
    assert page.requests and all(url.startswith(service_url) for url in page.requests), page.requests
    page.screenshot(path=str(tmp_path / "serve_page.png"))
    if os.environ.get("RNNKIT_SCREENSHOT"):
        Path(os.environ["RNNKIT_SCREENSHOT"]).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=os.environ["RNNKIT_SCREENSHOT"])
    assert (tmp_path / "serve_page.png").stat().st_size > 1_000


def test_a_head_outside_the_vocabulary_shows_the_apis_message(page, service_url):
    answer = httpx.post(f"{service_url}/generate", json={"acrostic": "春Ж", "form": 5}, timeout=30)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    page.fill("#acrostic", "春Ж")
    page.select_option("#form", "5")
    page.click("#write")
    error = page.locator("#error")
    error.filter(has_text="Ж").wait_for()
    if isinstance(detail, str):
        assert detail in error.inner_text()
    assert page.locator("#poems pre.poem").count() == 0
