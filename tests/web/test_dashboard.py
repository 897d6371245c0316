"""The training dashboard (/ui/jobs) in Chromium: the admin key, escaping, and a `tiny` synthetic job
submitted from the page, followed live to `succeeded`, whose model then appears in the explorer."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.service.conftest import ADMIN, API_KEY
from tests.web.conftest import screenshot

STEPS = 60  # the tiny preset logs every 5 steps: enough progress events to watch the bar move
PROGRESS = "() => [document.querySelector('#progress').value, document.querySelector('#progress').max]"


def use_key(page, key: str) -> None:
    page.get_by_role("textbox", name="Admin key").fill(key)
    page.get_by_role("button", name="Use this key").click()


def fill_synthetic_tiny_job(page, model: str) -> None:
    page.get_by_label("Dataset", exact=True).select_option("synthetic")
    page.get_by_label("Images", exact=True).fill("256")
    page.get_by_label("Seed", exact=True).fill("3")
    page.get_by_label("Preset").select_option("tiny")
    page.get_by_label("Model name").fill(model)
    page.get_by_label("Config overrides", exact=False).fill(f"total_steps={STEPS}\neval_interval={STEPS // 2}")


@pytest.mark.parametrize(
    ("key", "message"),
    [(None, "This needs the admin key"), ("not-the-key", "The admin key was refused (wrong API key)")],
)
def test_submitting_without_the_right_key_says_so(page, live_url, key, message):
    page.goto(f"{live_url}/ui/jobs")
    if key:
        use_key(page, key)
    fill_synthetic_tiny_job(page, "refused")
    page.get_by_role("button", name="Submit the job").click()
    page.wait_for_function("() => document.querySelector('#submit-status').dataset.kind === 'error'")
    assert message in page.locator("#submit-status").text_content()
    assert page.url == f"{live_url}/ui/jobs"


def test_the_key_stays_in_the_session_only(page, live_url):
    page.goto(f"{live_url}/ui/jobs")
    use_key(page, API_KEY)
    assert page.evaluate("sessionStorage.getItem('microgan.adminKey')") == API_KEY
    assert page.evaluate("localStorage.length") == 0
    assert API_KEY not in page.url
    assert "A key is set" in page.locator("[data-key-state]").text_content()
    page.get_by_role("button", name="Forget the key").click()
    assert page.evaluate("sessionStorage.length") == 0


def test_a_bad_config_key_gets_the_api_message(page, live_url):
    page.goto(f"{live_url}/ui/jobs")
    use_key(page, API_KEY)
    fill_synthetic_tiny_job(page, "bad")
    page.get_by_label("Config overrides", exact=False).fill("no_such_key=1")
    page.get_by_role("button", name="Submit the job").click()
    page.wait_for_function("() => document.querySelector('#submit-status').dataset.kind === 'error'")
    assert "config: " in page.locator("#submit-status").text_content()
    assert "no_such_key" in page.locator("#submit-status").text_content()


def test_html_in_a_dataset_name_shows_as_text(page, live_url, synthetic_zip):
    name = "<img src=x id=injected onerror=alert(1)>.zip"
    with open(synthetic_zip, "rb") as data:
        response = httpx.post(f"{live_url}/datasets", headers=ADMIN, files={"file": (name, data)}, timeout=120)
    assert response.status_code == 201, response.text
    page.goto(f"{live_url}/ui/jobs")
    option = page.locator("#dataset option", has_text="injected")
    option.wait_for(state="attached")
    assert name in option.text_content()
    assert page.evaluate("document.querySelector('#injected')") is None


def test_a_tiny_synthetic_job_from_the_page_runs_live_to_succeeded_and_its_model_is_explorable(page, live_url):
    page.goto(f"{live_url}/ui/jobs")
    use_key(page, API_KEY)
    fill_synthetic_tiny_job(page, "webjob")
    page.get_by_role("button", name="Submit the job").click()
    page.wait_for_url(f"{live_url}/ui/jobs/*")
    job_id = page.url.rsplit("/", 1)[1]

    # The progress bar advances while the job runs, fed by the event stream, with an ETA.
    seen, texts, deadline = set(), set(), time.monotonic() + 300
    while page.locator("#state").text_content() != "succeeded":
        assert page.locator("#state").text_content() not in ("failed", "cancelled", "interrupted")
        assert time.monotonic() < deadline, f"no success in time: {httpx.get(f'{live_url}/train/{job_id}').text}"
        seen.add(tuple(page.evaluate(PROGRESS)))
        texts.add(page.locator("#progress-text").text_content())
        time.sleep(0.1)
    running = sorted(value for value, total in seen if total == STEPS and 0 < value < STEPS)
    assert len(running) >= 2, f"the bar did not advance while running: {sorted(seen)}"
    assert any(f"/ {STEPS} · ETA " in text for text in texts), texts
    assert page.evaluate("document.querySelector('#progress').value") == STEPS
    assert f"step {STEPS} / {STEPS}" in page.locator("#progress-text").text_content()

    # Its curves, preview and log are on the page; the curves hold every progress line.
    curves = httpx.get(f"{live_url}/train/{job_id}/curves").json()
    assert curves["step"] == list(range(5, STEPS + 1, 5)) and all(v is not None for v in curves["wasserstein"])
    assert page.locator("#chart-critic .u-title").text_content() == "Critic"
    page.wait_for_function("() => !document.querySelector('#preview').hidden")
    assert f"at step {STEPS}" in page.locator("#fidelity").text_content()  # the evaluations at 30 and 60 arrived
    assert page.locator("#fidelity table").count() == 2
    assert page.locator("#log").text_content().strip()
    assert page.locator("#cancel").is_disabled() and page.locator("#resume").is_disabled()
    screenshot(page, "web-job.png")

    # The link to its model opens the explorer on it, with images.
    page.get_by_role("link", name="Open webjob v1 in the explorer").click()
    page.wait_for_function("() => document.querySelectorAll('#grid canvas').length === 16")
    assert "webjob" in page.locator("#model option").all_text_contents()
    assert page.locator("#model").input_value() == "webjob"
    assert page.watch.console_errors == []

    # And the jobs list shows it with its state badge.
    page.goto(f"{live_url}/ui/jobs")
    row = page.locator("#jobs tr", has_text=job_id)
    row.locator(".badge.succeeded").wait_for()
    screenshot(page, "web-jobs.png")
