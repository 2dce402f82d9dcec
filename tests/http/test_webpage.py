"""The web page at `/`: served offline by the daemon, behind the same token, and driven in a real headless
Chromium (Debian's chromium + chromium-driver through selenium): it lists the loaded model, streams a chat
answer into the page, and its stop button cancels the request -- as the daemon's own counters show."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from ingot.daemon.http import start_http_server
from ingot.proto.ingot.v1 import runtime_pb2, runtime_pb2_grpc

from http_helpers import MODEL, WAIT_S, Served, metric

DOCS = Path(__file__).resolve().parent.parent.parent / "docs"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _load(served: Served) -> runtime_pb2.RunningModel:
    with grpc.insecure_channel(f"unix:{served.socket_path}") as channel:
        stub = runtime_pb2_grpc.RuntimeStub(channel)
        return stub.Load(runtime_pb2.LoadRequest(model=MODEL, keep_alive="10m"), timeout=WAIT_S).model


# --- without a browser: what is served, to whom -------------------------------------------------------------


def test_browsers_get_the_page_and_clients_the_greeting(http: httpx.Client) -> None:
    page = http.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    # Everything it loads comes from the daemon itself: no CDN, no third-party code.
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/ui/") for s in sources), sources
    for source in sources:
        assert http.get(source).status_code == 200
    assert http.get("/").text == "ingot is running"  # what Ollama clients probe


def test_state_document(served: Served, http: httpx.Client) -> None:
    _load(served)
    state = http.get("/ui/state").json()
    assert MODEL in [m["name"] for m in state["models"]]
    (loaded,) = [m for m in state["loaded"] if m["name"] == MODEL]
    assert loaded["state"] == "MODEL_STATE_READY" and int(loaded["size_bytes"]) > 0
    assert loaded["expires_at"]  # idle: its keep-alive runs
    assert [d["device"] for d in loaded["devices"]] == ["cpu"]
    assert "queue" in loaded and "tokens_per_second" in loaded
    assert [d["key"] for d in state["devices"]][0] == "cpu"
    assert state["tokens_per_second"]["step_seconds"] == 10
    assert state["watch"] == []


@pytest.fixture
def guarded(served: Served) -> Iterator[str]:
    """A second HTTP listener over the same daemon that wants a token."""
    server = start_http_server(served.daemon.http_services(), host="127.0.0.1", port=0, token="s3cret")
    try:
        yield server.url
    finally:
        server.stop(grace_seconds=0.5)


def test_the_page_shell_is_open_and_its_data_wants_the_token(guarded: str) -> None:
    with httpx.Client(base_url=guarded, timeout=WAIT_S) as http:
        assert http.get("/", headers={"Accept": "text/html"}).status_code == 200
        assert http.get("/ui/app.js").status_code == 200
        assert http.get("/ui/state").status_code == 401
        assert http.get("/ui/state", headers={"Authorization": "Bearer s3cret"}).status_code == 200


# --- in Chromium ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("Debian's chromium and chromium-driver are not installed (scripts/setup --test installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="ingot-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
        f"--user-data-dir={profile}", "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    # The driver named explicitly: selenium then never looks for (or downloads) one of its own.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver: object, condition: object, message: str) -> object:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S).until(condition, message)  # type: ignore[arg-type]


def test_page_lists_the_loaded_model_streams_a_chat_and_stop_cancels_it(
    served: Served, http: httpx.Client, browser: object
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser
    _load(served)
    driver.get(served.url + "/")  # type: ignore[attr-defined]
    # Read in one step in the page: every poll redraws the table, so a row found now may be gone a moment later.
    cells = _wait(
        driver,
        lambda d: d.execute_script(
            "return Array.from(document.querySelectorAll('#loaded tbody tr[data-model=\"' + arguments[0]"
            " + '\"] td')).map((td) => td.textContent)", MODEL
        ),
        "the loaded model never appeared in the page",
    )
    assert cells[0] == MODEL and cells[2] == "100% CPU" and cells[3].startswith("cpu "), cells  # type: ignore[index]
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, '#devices tbody tr[data-device="cpu"]'), "no devices")

    cancelled_before = metric(http, "ingot_generations_total", api="ollama", model=MODEL, done_reason="cancelled")
    Select(driver.find_element(By.ID, "chat-model")).select_by_value(MODEL)  # type: ignore[attr-defined]
    driver.find_element(By.ID, "chat-input").send_keys("count for me")  # type: ignore[attr-defined]
    driver.find_element(By.ID, "chat-send").click()  # type: ignore[attr-defined]
    # The counting model never stops on its own: the answer grows piece by piece until stopped.
    first = _wait(driver, lambda d: d.find_element(By.ID, "chat-answer").text, "no streamed text arrived")
    _wait(driver, lambda d: len(d.find_element(By.ID, "chat-answer").text) > len(first) + 20, "the stream stalled")
    assert driver.find_element(By.ID, "chat-status").get_attribute("data-state") == "streaming"  # type: ignore[attr-defined]
    assert served.daemon.scheduler.running()[0].active_requests >= 1  # the daemon is generating for the page

    driver.find_element(By.ID, "chat-stop").click()  # type: ignore[attr-defined]
    _wait(driver, lambda d: d.find_element(By.ID, "chat-status").get_attribute("data-state") == "stopped",
          "the page did not show the stop")
    assert served.daemon.scheduler.drain(WAIT_S)  # the slot is free again: the daemon cancelled the request
    cancelled = metric(http, "ingot_generations_total", api="ollama", model=MODEL, done_reason="cancelled")
    assert cancelled == cancelled_before + 1

    # The next poll draws the tokens just generated into the chart.
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#chart-legend i"), "the chart stayed empty")
    driver.execute_script("window.scrollTo(0, 0)")  # type: ignore[attr-defined]
    screenshot = driver.get_screenshot_as_png()  # type: ignore[attr-defined]
    assert screenshot.startswith(b"\x89PNG")
    if os.environ.get("INGOT_UPDATE_SCREENSHOT"):
        (DOCS / "web-page.png").write_bytes(screenshot)


def test_page_asks_for_the_token(guarded: str, browser: object) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(guarded + "/")  # type: ignore[attr-defined]
    form = _wait(driver, lambda d: d.find_element(By.ID, "token-form").is_displayed() and
                 d.find_element(By.ID, "token-form"), "the page did not ask for the token")
    driver.find_element(By.ID, "token-input").send_keys("s3cret")  # type: ignore[attr-defined]
    form.find_element(By.TAG_NAME, "button").click()  # type: ignore[attr-defined]
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f'#models tbody tr[data-model="{MODEL}"]'),
          "the page did not load its data with the token")
