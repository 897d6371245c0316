"""Fixtures of the browser tests: Debian's Chromium driven by Playwright, against a real `python -m service`.

One service per session (the session's tiny model, a writable store for the jobs it trains) and one
browser; each test gets a fresh page whose requests may only go to 127.0.0.1 (anything else is aborted
and fails the test), with its console errors collected.

Without a browser the tests skip, saying how to get one. Screenshots for the README are written only
when MICROGAN_SCREENSHOTS names a folder: `MICROGAN_SCREENSHOTS=docs ./dev test tests/web`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from tests.conftest import running_service
from tests.service.conftest import API_KEY, wait_until

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = (
    "no Chromium for the browser tests: install Debian's with `apt-get install chromium` "
    "(.ci/run does this when run as root), or set MICROGAN_CHROMIUM to a Chromium or Chrome binary"
)


def chromium_path() -> str | None:
    configured = os.environ.get("MICROGAN_CHROMIUM")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


@pytest.fixture(scope="session")
def browser():
    """Chromium, headless; the tests skip (with how to install it) when there is none."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: ./dev setup")
    executable = chromium_path()
    if executable is None:
        pytest.skip(INSTALL_HINT)
    playwright = sync_api.sync_playwright().start()
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture(scope="session")
def live_url(tmp_path_factory, tiny_store: Path, tiny_grains_store: Path) -> Iterator[str]:
    """`python -m service` over a writable copy of the tiny store (jobs export into it) with the conditional
    `grains` model beside it; its base URL."""
    root = tmp_path_factory.mktemp("web")
    store = root / "store"
    shutil.copytree(tiny_store, store)
    shutil.copytree(tiny_grains_store / "grains", store / "grains")
    with live_service(root, models_dir=str(store), default_model="tiny", max_n="64") as url:
        # Ready means the default model is warm; the others load after it.
        wait_until(lambda: {m["name"] for m in httpx.get(f"{url}/models").json()["models"]} == {"tiny", "grains"})
        yield url


@contextlib.contextmanager
def live_service(root: Path, **settings: str) -> Iterator[str]:
    """`python -m service` with these MICROGAN_ settings (a data dir under `root`, the admin key API_KEY, no
    rescans), ready; its base URL. Stopped on exit."""
    settings = {"data_dir": str(root / "data"), "api_key": API_KEY, "reload_interval": "0", **settings}
    with running_service(root / "service.log", **settings) as (_, url):
        yield url


@dataclass
class Watch:
    """What a page did that a test checks afterwards."""

    console_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)


def open_page(browser, width: int = 1280, height: int = 900):
    """A page in a fresh context (its own sessionStorage), network limited to 127.0.0.1; (context, page, watch)."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    watch = Watch()

    def only_loopback(route) -> None:
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            watch.outside_requests.append(route.request.url)
            route.abort()

    page.route("**/*", only_loopback)
    page.on("console", lambda message: message.type == "error" and watch.console_errors.append(message.text))
    page.on("pageerror", lambda error: watch.console_errors.append(f"uncaught: {error}"))
    return context, page, watch


@pytest.fixture
def page(browser):
    """A 1280 x 900 page; after the test, no request may have left the host."""
    context, page, watch = open_page(browser)
    page.watch = watch
    yield page
    context.close()
    assert watch.outside_requests == [], f"requests left the host: {watch.outside_requests}"


def screenshot(page, name: str) -> None:
    """Save a full-page screenshot for the README when MICROGAN_SCREENSHOTS names a folder."""
    folder = os.environ.get("MICROGAN_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)
