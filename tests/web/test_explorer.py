"""The explorer (/) in Chromium: the images it shows are the API's, pixel for pixel; its URL reproduces them;
enlarging, downloads, tessellation size and width, bad input, both layouts and the keyboard."""

from __future__ import annotations

import io
import zipfile

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.web.conftest import open_page, screenshot

GRID_PIXELS = """() => [...document.querySelectorAll('#grid canvas')].map((canvas) => {
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    const grey = [];
    for (let i = 0; i < data.length; i += 4) grey.push(data[i]);
    return {side: canvas.width, grey};
})"""


def api_images(url: str, **params) -> np.ndarray:
    """The images POST /generate gives, from its zip of PNGs: uint8 (n, side, side)."""
    response = httpx.post(f"{url}/generate", params={"format": "zip", **params}, timeout=60)
    response.raise_for_status()
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = sorted(name for name in archive.namelist() if name.endswith(".png"))
        return np.stack([np.array(Image.open(io.BytesIO(archive.read(name)))) for name in names])


def page_images(page) -> np.ndarray:
    tiles = page.evaluate(GRID_PIXELS)
    return np.array([np.array(t["grey"], np.uint8).reshape(t["side"], t["side"]) for t in tiles])


def generate(page, **fields) -> None:
    """Fill the form as a person would and press Generate; wait for the grid."""
    for name, value in fields.items():
        page.get_by_label({"seed": "Seed", "n": "Images", "start": "First index", "size": "Size (px)",
                           "width": "Boundary width (px)"}[name], exact=True).fill(str(value))
    page.get_by_role("button", name="Generate").click()
    page.wait_for_function("() => document.querySelector('#status').textContent.endsWith('px).')")


def test_explorer_loads_with_the_default_model_and_its_card_without_console_errors(page, live_url):
    page.goto(live_url)
    page.wait_for_selector("#card-body table")
    assert page.locator("#model").input_value() == "tiny"
    assert page.locator("#version").input_value() == "1"
    assert page.locator("#card-body").get_by_text("Distances to real images").is_visible()
    page.wait_for_function("() => [...document.querySelectorAll('#card-body img')].every((i) => i.naturalWidth)")
    assert page.watch.console_errors == []


def test_seed_7_shows_the_same_16_images_as_the_api_and_its_url_reproduces_them(page, browser, live_url):
    page.goto(live_url)
    page.wait_for_selector("#card-body table")
    generate(page, seed=7, n=16, start=0)
    expected = api_images(live_url, model="tiny", version=1, seed=7, n=16)
    shown = page_images(page)
    assert shown.shape == (16, 64, 64) and np.array_equal(shown, expected)
    assert "seed=7" in page.url and "n=16" in page.url and "model=tiny" in page.url
    screenshot(page, "web-explorer.png")

    # The link, opened elsewhere, shows the very same images at once.
    context, other, watch = open_page(browser)
    other.goto(page.url)
    other.wait_for_function("() => document.querySelectorAll('#grid canvas').length === 16")
    assert np.array_equal(page_images(other), expected)
    assert watch.console_errors == [] and watch.outside_requests == []
    context.close()

    # Next page: images 16..31 of the same seed; Back returns to 0..15.
    page.get_by_role("button", name="Next page").click()
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('images 16 to 31')")
    assert np.array_equal(page_images(page), api_images(live_url, model="tiny", seed=7, n=16, start=16))
    assert "start=16" in page.url
    page.go_back()
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('images 0 to 15')")
    assert np.array_equal(page_images(page), expected)
    assert page.watch.console_errors == []


def test_an_enlarged_image_names_its_index_and_seed_and_downloads_the_api_png(page, live_url):
    page.goto(f"{live_url}/?model=tiny&version=1&seed=7&n=8&start=0")
    page.wait_for_function("() => document.querySelectorAll('#grid canvas').length === 8")
    page.get_by_role("button", name="Enlarge image 3").click()
    dialog = page.get_by_role("dialog")
    assert "Image 3 of seed 7" in dialog.get_by_role("heading").text_content()
    with page.expect_download() as download:
        dialog.get_by_role("button", name="Download PNG").click()
    png = httpx.post(f"{live_url}/generate", params={"seed": 7, "start": 3, "model": "tiny"}).content
    assert download.value.suggested_filename == "tiny-v1-s7-00003.png"
    assert open(download.value.path(), "rb").read() == png
    page.keyboard.press("Escape")
    assert not dialog.is_visible()


def test_download_buttons_give_every_format_of_the_model(page, live_url):
    page.goto(f"{live_url}/?seed=5&n=4")
    page.wait_for_function("() => document.querySelectorAll('#grid canvas').length === 4")
    labels = page.locator("#downloads button").all_text_contents()
    assert [label.removeprefix("Download ") for label in labels] == [
        "zip of PNGs", "grid PNG", "npy", "h5", "SVG grid", "grain polygons (JSON)"
    ]
    with page.expect_download() as download:
        page.get_by_role("button", name="Download npy").click()
    api = httpx.post(f"{live_url}/generate", params={"seed": 5, "n": 4, "format": "npy"})
    assert open(download.value.path(), "rb").read() == api.content
    assert download.value.suggested_filename == "tiny-v1-s5-00000-00003.npy"


def test_tessellation_size_and_width_draw_the_api_images(page, live_url):
    page.goto(live_url)
    page.wait_for_selector("#card-body table")
    assert page.get_by_label("Size (px)").is_visible()  # the tiny model draws a Laguerre tessellation
    generate(page, seed=11, n=2, start=0, size=128, width=4)
    expected = api_images(live_url, seed=11, n=2, size=128, width=4)
    shown = page_images(page)
    assert shown.shape == (2, 128, 128) and np.array_equal(shown, expected)
    assert "size=128" in page.url and "width=4" in page.url


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"seed": "seven"}, "Seed: a whole number from 0 to 9223372036854775807."),
        ({"seed": "1", "n": "0"}, "Images: a whole number from 1 to 64."),
        ({"seed": "1", "width": "40"}, "width=40 px leaves no grain interior at size=64"),
    ],
)
def test_bad_input_gets_a_clear_message(page, live_url, fields, message):
    page.goto(live_url)
    page.wait_for_selector("#card-body table")
    for name, value in fields.items():
        page.locator(f"#{name}").fill(value)
    page.get_by_role("button", name="Generate").click()
    status = page.locator("#status")
    page.wait_for_function("() => document.querySelector('#status').dataset.kind === 'error'")
    assert message in status.text_content()


def test_an_unknown_model_in_a_link_is_named(page, live_url):
    page.goto(f"{live_url}/?model=nope&seed=1")
    page.wait_for_function("() => document.querySelector('#status').dataset.kind === 'error'")
    assert 'Model "nope" is not loaded here' in page.locator("#status").text_content()


@pytest.mark.parametrize("width", [1280, 390])
def test_layout_fits_the_width(browser, live_url, width):
    context, page, watch = open_page(browser, width=width, height=800)
    for path in ("/?seed=7&n=16", "/ui/jobs"):
        page.goto(live_url + path)
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways at {width} px by {overflow} px"
    page.goto(f"{live_url}/?seed=7&n=16")
    page.wait_for_function("() => document.querySelectorAll('#grid canvas').length === 16")
    boxes = [tile.bounding_box() for tile in page.locator("#grid .tile").all()]
    assert all(box["x"] >= 0 and box["x"] + box["width"] <= width and box["width"] >= 40 for box in boxes)
    assert watch.console_errors == [] and watch.outside_requests == []
    context.close()


def test_keyboard_reaches_every_control_and_each_input_has_a_label(page, live_url):
    page.goto(live_url)
    page.wait_for_selector("#card-body table")
    unlabelled = page.evaluate(
        "[...document.querySelectorAll('input, select, textarea')].filter((e) => !e.labels.length).map((e) => e.id)"
    )
    assert unlabelled == []
    reached = []
    for _ in range(16):  # from the top: the three page links, then the form
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.id"))
    for control in ("model", "version", "seed", "random-seed", "n", "start", "size", "width", "generate", "next-page"):
        assert control in reached, f"Tab never reaches #{control}: {reached}"
    page.locator("#generate").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('#grid canvas').length === 16")
    page.locator("#grid .tile").first.focus()
    page.keyboard.press("Enter")
    assert page.get_by_role("dialog").is_visible()
