"""The latent explorer at ``/``, driven in headless Chromium against real uvicorn servers.

Debian's ``chromium`` is driven by Playwright through ``executable_path`` (no
browser download); the servers are ``python -m service`` on the shipped models.
The browser tests skip, saying why, when no Chromium is installed.

``GANSERVE_PAGE_SHOTS=docs/images`` writes the page's screenshots there (the
README's pictures); otherwise they go to a temporary folder.
"""

from __future__ import annotations

import io
import os
import shutil
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image
from service_testlib import metric_value
from test_service_e2e import free_port, start_server, stop, wait_ready

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "models"
KEY = "page-test-key"
# The shipped models the tests use (fewer models: a faster start).
MODELS = ("dcgan-fashion", "dcgan-mnist", "cgan-fashion")
# Read at import: a session fixture clears GANSERVE_* before the tests run.
CHROMIUM = (
    os.environ.get("GANSERVE_CHROMIUM")
    or shutil.which("chromium")
    or shutil.which("chromium-browser")
)
SHOTS = os.environ.get("GANSERVE_PAGE_SHOTS")


def shipped(folder: Path, names: tuple[str, ...]) -> Path:
    """A models folder holding (links to) some of the shipped models."""
    folder.mkdir()
    for name in names:
        (folder / name).symlink_to(SHIPPED / name, target_is_directory=True)
    return folder


@contextmanager
def serve(models: Path, **env: str) -> Iterator[str]:
    """``python -m service`` on ``models`` and a free port; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["-m", "service", "--host", "127.0.0.1", "--port", str(port)]
    settings = {"GANSERVE_MODELS_DIR": str(models), "GANSERVE_LOG_LEVEL": "warning"}
    proc = start_server(args, settings | env)
    try:
        wait_ready(proc, url, timeout=120)
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Default settings, three shipped models."""
    with serve(shipped(tmp_path_factory.mktemp("page") / "models", MODELS)) as url:
        yield url


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An API key, and one request may wait per model, for half a second: a second gets 503."""
    models = shipped(tmp_path_factory.mktemp("page-strict") / "models", MODELS[:1])
    with serve(
        models, GANSERVE_API_KEY=KEY, GANSERVE_MAX_QUEUE="1", GANSERVE_MAX_WAIT_MS="500"
    ) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = CHROMIUM
    if executable is None:
        pytest.skip(
            "no Chromium installed (apt-get install chromium, or set GANSERVE_CHROMIUM): "
            "the page's browser tests need one"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=["--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.problems = []  # console errors and uncaught exceptions
    page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    yield page
    context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = Path(SHOTS).resolve() if SHOTS else tmp_path_factory.mktemp("page-shots")
    path.mkdir(parents=True, exist_ok=True)
    return path


# -- helpers ------------------------------------------------------------------------------


def img(panel: str) -> str:
    return f"[data-panel='{panel}'] img"


def wait_drawn(page: Any, panel: str, *parts: str) -> str:
    """Wait until the panel shows an image whose request has every part; return the request."""
    page.wait_for_function(
        """([selector, parts]) => {
            const img = document.querySelector(selector);
            return img && !img.hidden && img.complete && img.naturalWidth > 0 && img.dataset.src
                && parts.every((p) => img.dataset.src.includes(p));
        }""",
        arg=[img(panel), list(parts)],
    )
    return page.get_attribute(img(panel), "data-src")


def download_current(page: Any) -> bytes:
    """The bytes "Download PNG" saves (the current panel's image)."""
    with page.expect_download() as info:
        page.click("#download")
    return Path(info.value.path()).read_bytes()


def direct(url: str, request: str, key: str | None = None) -> bytes:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = httpx.get(f"{url}/{request}", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.content


def page_query(page: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def png_size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


# -- the page's files (no browser needed) ------------------------------------------------


def test_page_and_its_files_are_served(server: str) -> None:
    page = httpx.get(f"{server}/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "latent explorer" in page.text
    for name in ("explorer.js", "explorer.css"):
        assert f'"static/{name}"' in page.text
        response = httpx.get(f"{server}/static/{name}")
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-cache"
    assert httpx.head(f"{server}/").status_code == 200
    assert httpx.get(f"{server}/static/nothing.js").status_code == 404
    assert "/" not in httpx.get(f"{server}/openapi.json").json()["paths"]
    metrics = httpx.get(f"{server}/metrics").text
    assert metric_value(metrics, "ganserve_requests_total", route="/static", status="200") >= 2
    assert metric_value(metrics, "ganserve_requests_total", route="/static", status="404") == 1


def test_page_is_public_when_the_api_needs_a_key(strict_server: str) -> None:
    assert httpx.get(f"{strict_server}/").status_code == 200
    assert httpx.get(f"{strict_server}/static/explorer.js").status_code == 200
    assert httpx.get(f"{strict_server}/models").status_code == 401


# -- in the browser ------------------------------------------------------------------------


def test_page_loads_clean_and_shows_what_the_api_returns(
    page: Any, server: str, shots: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page.goto(f"{server}/")
    requests = [wait_drawn(page, p) for p in ("base", "slider-0", "slider-1", "slider-2")]
    assert requests[0].startswith("generate?")
    assert all(r.startswith("perturb?") and "dims=" in r for r in requests[1:])
    query = page_query(page)
    assert query["view"] == "sliders" and query["model"] and query["seed"] == "0"
    # The model's card facts beside the picker.
    info = page.inner_text("#model-info")
    assert "FID" in info and "fashion-mnist" in info and "CPUExecutionProvider" in info
    # Every image has alt text and its size reserved before it loads.
    for panel in ("base", "slider-0"):
        assert page.get_attribute(img(panel), "alt")
        assert page.get_attribute(img(panel), "width") and page.get_attribute(img(panel), "height")
    assert page.locator("[data-panel=base] .column-labels span").all_inner_texts() == [
        str(j) for j in range(8)
    ]
    # The current image (the last slider's) is byte for byte the GET request it names.
    shown = download_current(page)
    assert shown == direct(server, requests[-1])
    assert page.get_attribute("#download", "href") == page.get_attribute(img("slider-2"), "src")
    curl = page.inner_text("#curl")
    assert f"{server}/{requests[-1]}" in curl and "Authorization" not in curl
    page.screenshot(path=shots / "page-sliders.png", full_page=True)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    page.click("#copy-curl")
    assert page.evaluate("navigator.clipboard.readText()") == curl
    # The SDK call, run as shown, saves the same bytes.
    page.click("#copy-sdk")
    sdk = page.evaluate("navigator.clipboard.readText()")
    assert "client.perturb(" in sdk
    monkeypatch.chdir(tmp_path)
    exec(sdk, {})
    assert (tmp_path / page.get_attribute("#download", "download")).read_bytes() == shown
    assert page.problems == []


def test_model_and_slider_change_the_image_and_the_url(page: Any, server: str) -> None:
    page.goto(f"{server}/?view=sliders&sliders=7:0&seed=5&n=6")
    page.select_option("#model", "dcgan-mnist")
    before = wait_drawn(page, "slider-0", "model=dcgan-mnist", "dims=7", "values=0")
    assert page_query(page)["model"] == "dcgan-mnist"
    assert "seed=5" in before and "n=6" in before
    page.click(img("slider-0"))
    old = download_current(page)
    slider = page.locator("#slider-0-value")
    timings = []
    value = 0.0
    for _ in range(6):  # keyboard: each arrow press is one step of 0.1
        slider.press("ArrowRight")
        value = round(value + 0.1, 2)
        request = wait_drawn(page, "slider-0", f"values={value}&")
        timings.append(float(page.get_attribute(img("slider-0"), "data-drawn-ms")))
    assert page_query(page)["sliders"] == f"7:{value}"
    assert page.inner_text("[data-panel='slider-0'] output") == str(value)
    new = download_current(page)
    assert new != old
    assert new == direct(server, request)
    assert page.locator("[data-panel='slider-0'] .row-labels span").inner_text() == (
        f"z[7] = {value}"
    )
    # Reported, not asserted: from the key press to the new image decoded, in the page.
    print(
        f"\nslider move -> new image (dcgan-mnist 28x28, n=6, scale 3): "
        f"median {statistics.median(timings):.1f} ms, max {max(timings):.1f} ms over {timings}"
    )
    assert page.problems == []


def test_the_url_restores_the_view(page: Any, server: str) -> None:
    link = f"{server}/?model=dcgan-fashion&view=sliders&seed=11&n=4&scale=2&smode=add&sliders=3:1.5"
    page.goto(link)
    request = wait_drawn(page, "slider-0")
    assert request == ("perturb?model=dcgan-fashion&seed=11&n=4&mode=add&dims=3&values=1.5&scale=2")
    assert page.input_value("#slider-0-value") == "1.5"
    assert page.is_checked("input[name=smode][value=add]")
    assert page_query(page)["sliders"] == "3:1.5"


def test_presets_draw_the_reports_experiments(page: Any, server: str, shots: Path) -> None:
    page.goto(f"{server}/?model=dcgan-fashion&view=grid&seed=0")
    page.click("text=15 × 8 grid")
    request = wait_drawn(page, "experiment", "dims=5,20,40,60,80", "values=-3,0,3")
    labels = page.locator("[data-panel=experiment] .row-labels span").all_inner_texts()
    assert len(labels) == 15 and labels[0] == "z[5] = −3" and labels[-1] == "z[80] = 3"
    data = download_current(page)
    assert data == direct(server, request)
    assert png_size(data) == (8 * (28 * 3 + 2) + 2, 15 * (28 * 3 + 2) + 2)
    page.screenshot(path=shots / "page-experiment.png", full_page=True)
    page.click("text=noise")
    wait_drawn(page, "experiment", "mode=noise", "values=0,0.5,1,2")
    assert page.locator("[data-panel=experiment] .row-labels span").all_inner_texts() == [
        "z + 0·ε",
        "z + 0.5·ε",
        "z + 1·ε",
        "z + 2·ε",
    ]
    page.click("text=scale ×0.5 / ×2")
    assert "dims" not in wait_drawn(page, "experiment", "mode=scale", "values=0.5,1,2")
    assert page_query(page)["mode"] == "scale"
    assert page.problems == []


def test_class_picker_draws_the_chosen_class_rows(page: Any, server: str, shots: Path) -> None:
    page.goto(f"{server}/?model=cgan-fashion&view=classes&seed=2")
    wait_drawn(page, "classes", "model=cgan-fashion")
    page.click("#classes-none")
    assert page.inner_text("[data-panel=classes] .panel-error") == "Choose at least one class."
    page.check("#classes label:has-text('Sneaker') input")
    page.check("#classes label:has-text('Bag') input")
    request = wait_drawn(page, "classes", "labels=Sneaker,Bag&")
    assert page.locator("[data-panel=classes] .row-labels span").all_inner_texts() == [
        "Sneaker",
        "Bag",
    ]
    assert page_query(page)["classes"] == "7,8"
    assert request == "conditional?model=cgan-fashion&seed=2&labels=Sneaker,Bag&n=8&scale=3"
    data = download_current(page)
    assert data == direct(server, request)
    assert png_size(data)[1] == 2 * (28 * 3 + 2) + 2
    assert 'client.conditional(["Sneaker", "Bag"]' in page.inner_text("#sdk")
    page.screenshot(path=shots / "page-classes.png", full_page=True)
    assert page.problems == []


def test_a_refused_request_is_a_message_not_a_broken_image(page: Any, server: str) -> None:
    page.goto(f"{server}/?model=dcgan-fashion&view=grid&n=300&columns=20")
    error = page.locator("[data-panel=grid] .panel-error")
    error.wait_for()
    assert error.inner_text() == (
        "The service refused the request (422): n: n must be at most 256."
    )
    assert error.get_attribute("role") == "alert"
    assert page.locator(img("grid")).is_hidden()
    assert page.locator("#actions").is_hidden()
    page.goto(f"{server}/?model=no-such-model&sliders=9:0")
    assert "not served here" in page.locator("#message").inner_text()
    wait_drawn(page, "slider-0", "model=dcgan-fashion", "values=0&")
    # No connection: a message; back online, the next move draws again.
    page.context.set_offline(True)
    page.press("#slider-0-value", "ArrowRight")
    error = page.locator("[data-panel='slider-0'] .panel-error")
    error.wait_for()
    assert error.inner_text().startswith("Could not reach the service")
    assert page.locator(img("slider-0")).is_hidden()
    page.context.set_offline(False)
    page.press("#slider-0-value", "ArrowRight")
    wait_drawn(page, "slider-0", "values=0.2&")
    assert error.is_hidden()


def test_api_key_entered_in_the_page(page: Any, strict_server: str) -> None:
    url = strict_server
    page.goto(f"{url}/?model=dcgan-fashion&view=grid&n=4&columns=4")
    message = page.locator("#message")
    message.wait_for()
    assert message.inner_text().startswith("This service needs an API key (401)")
    assert page.locator("img").count() == 0
    assert page.get_attribute("#key-box", "open") is not None
    page.fill("#key", "wrong")
    page.click("#key-apply")
    # A function, not an expression: Playwright polls an expression with eval(), which
    # the page's Content-Security-Policy refuses once the first check comes out false.
    page.wait_for_function(
        "() => document.querySelector('#message').textContent.includes('refused the API key')"
    )
    page.fill("#key", KEY)
    page.press("#key", "Enter")
    request = wait_drawn(page, "grid", "n=4")
    assert message.is_hidden()
    assert download_current(page) == direct(url, request, key=KEY)
    curl = page.inner_text("#curl")
    assert "Authorization: Bearer $GANSERVE_API_KEY" in curl and KEY not in curl
    # Kept for the tab: a reload draws again without asking.
    page.reload()
    wait_drawn(page, "grid", "n=4")
    assert page.evaluate("sessionStorage.getItem('ganserve-api-key')") == KEY


def test_a_busy_service_is_a_message_and_space_is_reserved(page: Any, strict_server: str) -> None:
    page.add_init_script(f"sessionStorage.setItem('ganserve-api-key', '{KEY}')")
    page.goto(f"{strict_server}/?model=dcgan-fashion&view=sliders&sliders=1:0,2:0,3:0")
    frame = page.locator("[data-panel=base] .frame")
    frame.wait_for()
    reserved = frame.bounding_box()
    errors = page.locator(".panel-error:visible")
    errors.first.wait_for()
    wait_drawn(page, "base")
    assert frame.bounding_box() == reserved  # the image took the space kept for it
    texts = errors.all_inner_texts()
    assert len(texts) == 3
    for text in texts:
        assert text.startswith("The service is busy (503): model dcgan-fashion is busy")
        assert text.endswith("Try again in 1 s.")
    assert page.locator("img:visible").count() == 1


def test_phone_width(browser: Any, server: str, shots: Path) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    try:
        page = context.new_page()
        page.goto(f"{server}/?model=dcgan-fashion&view=sliders&seed=0")
        for panel in ("base", "slider-0", "slider-1", "slider-2"):
            wait_drawn(page, panel)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width}px wide on a 390px screen"
        for selector in (img("slider-2"), "#slider-2-value", "[data-panel='slider-2'] .remove"):
            box = page.locator(selector).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390, selector
        page.evaluate("document.querySelector('[data-panel=base]').scrollIntoView()")
        page.evaluate("window.scrollBy(0, -40)")
        page.screenshot(path=shots / "page-phone.png")
    finally:
        context.close()
