"""The explorer of a service whose /generate needs the admin key (MICROGAN_PROTECT_GENERATE=true): it says
so, asks for the key, and generates once it has it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import start_service, wait_ready
from tests.service.conftest import API_KEY


@pytest.fixture(scope="module")
def protected_url(tmp_path_factory, tiny_store: Path):
    root = tmp_path_factory.mktemp("protected")
    log = root / "service.log"
    process, url = start_service(
        log,
        models_dir=str(tiny_store),
        data_dir=str(root / "data"),
        api_key=API_KEY,
        protect_generate="true",
        reload_interval="0",
        models_read_only="true",
    )
    try:
        wait_ready(url, process, timeout=120, describe=lambda: log.read_text()[-3000:])
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def test_a_protected_generate_asks_for_the_key_then_shows_the_images(page, protected_url):
    page.goto(f"{protected_url}/?seed=7&n=4")
    page.wait_for_function("() => document.querySelector('#status').dataset.kind === 'error'")
    assert "This needs the admin key" in page.locator("#status").text_content()
    page.get_by_role("textbox", name="Admin key").fill("a wrong key")
    page.get_by_role("button", name="Use this key").click()
    page.get_by_role("button", name="Generate").click()
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('wrong API key')")
    page.get_by_role("textbox", name="Admin key").fill(API_KEY)
    page.get_by_role("button", name="Use this key").click()
    page.get_by_role("button", name="Generate").click()
    page.wait_for_function("() => document.querySelectorAll('#grid canvas').length === 4")
    assert page.locator("#status").get_attribute("data-kind") == "info"
    assert API_KEY not in page.url and page.evaluate("localStorage.length") == 0
