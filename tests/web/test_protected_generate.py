"""The explorer of a service whose /generate needs the admin key (MICROGAN_PROTECT_GENERATE=true): it says
so, asks for the key, and generates once it has it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.service.conftest import API_KEY
from tests.web.conftest import live_service


@pytest.fixture(scope="module")
def protected_url(tmp_path_factory, tiny_store: Path):
    root = tmp_path_factory.mktemp("protected")
    with live_service(root, models_dir=str(tiny_store), protect_generate="true", models_read_only="true") as url:
        yield url


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
