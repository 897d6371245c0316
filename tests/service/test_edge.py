"""What the edge refuses before any work: control characters, integers in other spellings, configs the
trainer would refuse; and what every answer carries: security and caching headers, no internal paths."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.service.conftest import ADMIN, copy_store, make_settings, serve, wait_ready


def _loc(response) -> list:
    return [tuple(error["loc"]) for error in response.json()["detail"]]


# Integers: plain decimal digits, one rule for every integer parameter of every route.

SPELLINGS = {
    "underscore": "1_000",
    "plus": "+5",
    "lead-space": " 1",
    "trail-space": "1 ",
    "exp": "1e3",
    "hex": "0x10",
    "arabic-digit": "\u0661",
    "float": "1.0",
}


@pytest.mark.parametrize("spelling", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_seed_in_another_spelling_is_422(client, spelling):
    response = client.post("/generate", params={"seed": spelling})
    assert response.status_code == 422, response.text
    assert ("query", "seed") in _loc(response) and "decimal digits" in response.text


def _integer_parameters(client) -> list[tuple[str, str, str, str]]:
    """(method, path template, where, name) of every integer parameter in the OpenAPI schema."""
    found = []
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                types = {schema.get("type")} | {option.get("type") for option in schema.get("anyOf", [])}
                if "integer" in types:
                    found.append((method, path, parameter["in"], parameter["name"]))
    return found


def test_every_integer_parameter_refuses_other_spellings(client):
    parameters = _integer_parameters(client)
    assert {name for *_, name in parameters} >= {"n", "seed", "start", "size", "width", "grains", "version"}
    for method, template, where, name in parameters:
        for spelling in ("+1", "1_0", " 1"):
            values = {"name": "tiny", "version": "1", "job_id": "0123456789ab", "dataset_id": "0123456789ab"}
            if where == "path":
                values[name] = spelling
            path = template.format(**values)
            params = {name: spelling} if where == "query" else {}
            response = client.request(method.upper(), path, params=params, headers=ADMIN)
            assert response.status_code == 422, (method, path, name, spelling, response.text)
            assert (where, name) in _loc(response), response.text
    assert client.post("/generate", params={"seed": "7", "n": "2", "start": "0"}).status_code == 200
    assert client.get("/models/tiny/1").status_code == 200


# Control characters: 422 naming where, never a 500.


@pytest.mark.parametrize(
    "path, params, loc",
    [
        ("/generate", {"model": "ti\x00ny"}, ("query", "model")),
        ("/generate", {"format": "png\n"}, ("query", "format")),
        ("/models/ti%00ny/1", {}, ("path",)),
        ("/generate", {"seed\x07": "1"}, ("query", "seed\x07")),
    ],
    ids=["nul-in-model", "newline-in-format", "nul-in-path", "bell-in-name"],
)
def test_control_character_in_path_or_query_is_422(client, path, params, loc):
    method = "GET" if path.startswith("/models") else "POST"
    response = client.request(method, path, params=params, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert _loc(response) == [loc] and "control characters" in response.text


# Headers.


def test_every_answer_is_nosniff_and_html_gets_a_policy(client):
    for response in (client.get("/healthz"), client.get("/models/nope/1"), client.post("/generate?seed=1_0")):
        assert response.headers["x-content-type-options"] == "nosniff"
    docs = client.get("/docs")
    assert docs.headers["content-type"].startswith("text/html")
    assert "default-src" in docs.headers["content-security-policy"]
    assert "content-security-policy" not in client.get("/healthz").headers


@pytest.mark.parametrize(
    "query, cache",
    [
        ("seed=3&model=tiny&version=1", "public, max-age=31536000, immutable"),
        ("seed=3", "public, no-cache"),
        ("n=2", "no-store"),
        ("seed=3&n=0", "no-store"),
    ],
    ids=["seed-model-version", "seed-only", "random", "refused"],
)
def test_generated_images_are_cached_as_their_determinism_allows(client, query, cache):
    assert client.post(f"/generate?{query}").headers["cache-control"] == cache


# Submissions the trainer would refuse, refused at once with the key and its range.


@pytest.fixture(scope="module")
def jobs_client(tmp_path_factory):
    with serve(make_settings(tmp_path_factory.mktemp("edge-store"), default_model="custom")) as client:
        yield client


TINY = {"dataset": {"synthetic": {"count": 64, "seed": 1}}, "preset": "tiny"}


@pytest.mark.parametrize(
    "change, fragments",
    [
        ({"config": {"total_steps": 10**30}}, ["'total_steps'", "0..10000000"]),
        ({"config": {"g_filters": [4096, 64, 32]}}, ["'g_filters'", "1..1024"]),
        ({"config": {"batch_size": 128}}, ["'batch_size'", "64 images", "1..64"]),
        ({"config": {"preset": "cpu"}}, ["'preset'", "cannot relabel"]),
        ({"preset": "tiny\x00"}, ["preset"]),
        ({"preset": "--data=/etc"}, ["preset"]),
        ({"config": {"total\x00steps": 1}}, ["config key", "control characters"]),
        ({"config": {"g_head": "laguerre\r\n"}}, ["config.g_head", "control characters"]),
    ],
    ids=[
        "steps-1e30",
        "width-4096",
        "batch-above-count",
        "relabel",
        "nul-preset",
        "flag-preset",
        "nul-key",
        "crlf-value",
    ],
)
def test_submission_out_of_the_trainers_range_is_422_naming_it(jobs_client, change, fragments):
    response = jobs_client.post("/train", json={**TINY, **change}, headers=ADMIN)
    assert response.status_code == 422, response.text
    for fragment in fragments:
        assert fragment in response.text, response.text
    assert jobs_client.get("/train").json() == []


def test_submission_nan_gp_weight_is_422(jobs_client):
    body = json.dumps({**TINY, "config": {"gp_weight": float("nan")}})
    response = jobs_client.post("/train", content=body, headers={**ADMIN, "Content-Type": "application/json"})
    assert response.status_code == 422 and "'gp_weight'" in response.text, response.text


# Nothing internal without the key.


def test_failed_version_reason_is_one_line_relative_to_the_store(tiny_store, tmp_path):
    store = copy_store(tiny_store, tmp_path / "store")
    shutil.copytree(store / "tiny" / "1", store / "tiny" / "2")
    (store / "tiny" / "2" / "saved_model.pb").unlink()
    with serve(make_settings(store)) as client:
        wait_ready(client)
        client.post("/models/reload", headers=ADMIN)
        (failed,) = client.get("/models").json()["failed"]
        assert failed["version"] == 2 and "tiny/2" in failed["reason"], failed
        for text in (failed["reason"], client.post("/generate?version=2").json()["detail"]):
            assert str(tmp_path) not in text and "\n" not in text, text
