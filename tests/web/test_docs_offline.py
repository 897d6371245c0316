"""/docs and /redoc render from local files with the network blocked; every page sends a strict CSP."""

from __future__ import annotations

import httpx
import pytest


def test_swagger_ui_renders_offline(page, live_url):
    page.goto(f"{live_url}/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "microgan" in page.locator(".swagger-ui .info .title").text_content()
    page.wait_for_selector("#operations-generate-create_images_generate_post")
    assert page.watch.console_errors == []  # the fixture also asserts that no request left the host


def test_redoc_renders_offline(page, live_url):
    page.goto(f"{live_url}/redoc")
    page.wait_for_selector("h1")
    assert "microgan" in page.locator("h1").first.text_content()
    page.get_by_text("Generate n images of a seed").first.wait_for()
    # ReDoc's bundle links its maker's logo from a CDN: the page's CSP blocks it before any request is made.
    blocked = [e for e in page.watch.console_errors if "cdn.redoc.ly" in e and "Content Security Policy" in e]
    assert page.watch.console_errors == blocked


@pytest.mark.parametrize("path", ["/", "/ui/jobs", "/ui/jobs/0123456789ab", "/docs", "/redoc"])
def test_pages_send_a_csp_without_inline_scripts(live_url, path):
    response = httpx.get(live_url + path)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    policy = dict(part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["default-src"] == "'self'"
    assert "<script>" not in response.text  # every script is a file (src=...)
    assert "cdn" not in response.text.lower()


def test_a_bad_job_id_in_a_page_url_is_refused(live_url):
    assert httpx.get(f"{live_url}/ui/jobs/not-an-id").status_code == 422
