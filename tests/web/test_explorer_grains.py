"""The explorer with a model conditioned on grain count: the grains field, its range, the API's images."""

from __future__ import annotations

import json

import numpy as np

from tests.web.conftest import open_page
from tests.web.test_explorer import api_images, page_images


def test_grains_field_draws_the_api_images_for_that_count_and_names_its_range(browser, live_url, tiny_grains_store):
    condition = json.loads((tiny_grains_store / "grains" / "1" / "model.json").read_text())["condition"]
    low, high = condition["min"], condition["max"]
    context, page, watch = open_page(browser)
    page.goto(f"{live_url}/?model=grains")
    field = page.get_by_label("Grains per image", exact=True)
    field.wait_for(state="visible")  # shown once the card says the model takes the condition
    page.get_by_label("Seed", exact=True).fill("7")
    page.get_by_label("Images", exact=True).fill("8")
    field.fill(str(high))
    page.get_by_role("button", name="Generate").click()
    page.wait_for_function("() => document.querySelector('#status').textContent.endsWith('px).')")
    expected = api_images(live_url, model="grains", seed=7, n=8, grains=high)
    assert np.array_equal(page_images(page), expected)
    assert f"grains={high}" in page.url and f"{high} grains each" in page.locator("#status").text_content()

    # Outside the trained range: a message naming it, no request.
    field.fill(str(high + 1))
    page.get_by_role("button", name="Generate").click()
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('Grains per image')")
    assert f"{low} to {high}" in page.locator("#status").text_content()

    # A model without the condition shows no grains field.
    page.goto(f"{live_url}/?model=tiny")
    page.wait_for_selector("#card-body table")
    assert not page.get_by_label("Grains per image", exact=True).is_visible()
    assert watch.console_errors == [] and watch.outside_requests == []
    context.close()
