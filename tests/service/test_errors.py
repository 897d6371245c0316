"""The service's errors become responses in one place: each answers its status and message over HTTP,
the real raise sites keep their bodies, and no router maps an error by hand."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import service.routes
from service import errors
from service.errors import Invalid, ServiceError
from tests.service.conftest import ADMIN


def _subclasses(cls: type) -> list[type]:
    return [cls] + [sub for direct in cls.__subclasses__() for sub in _subclasses(direct)]


ERRORS = _subclasses(ServiceError)


@pytest.fixture(scope="module")
def raising(client):
    """The module's client, its app given GET /test-raise/{name}: raises that error class with "boom"."""
    by_name = {cls.__name__: cls for cls in ERRORS}

    def raise_error(name: str) -> None:
        cls = by_name[name]
        raise cls("boom", ("query", "made_up")) if cls is Invalid else cls("boom")

    client.app.add_api_route("/test-raise/{name}", raise_error)
    return client


@pytest.mark.parametrize("cls", ERRORS, ids=lambda cls: cls.__name__)
def test_service_error_from_a_route_answers_its_status_and_message(raising, cls):
    response = raising.get(f"/test-raise/{cls.__name__}")
    assert response.status_code == cls.status, response.text
    assert response.headers["content-type"] == "application/json"
    if issubclass(cls, Invalid):
        location = ["query", "made_up"] if cls is Invalid else list(cls.field)
        assert response.json() == {"detail": [{"type": "value_error", "loc": location, "msg": "boom", "input": None}]}
    elif cls is errors.QueueFull:
        assert response.json() == {"detail": "busy, try again shortly (boom)"}
    else:
        assert response.json() == {"detail": "boom"}
    for name, value in cls.headers.items():
        assert response.headers[name] == value


def test_errors_that_ask_for_a_retry_say_when(raising):
    assert raising.get("/test-raise/NotReady").headers["retry-after"] == "5"
    assert raising.get("/test-raise/QueueFull").headers["retry-after"] == "1"
    assert raising.get("/test-raise/UploadStalled").headers["connection"] == "close"


def test_unexpected_error_is_a_500_without_internals(raising):
    response = raising.get("/test-raise/KeyError-is-not-a-service-error")  # KeyError in the route itself
    assert (response.status_code, response.json()) == (500, {"detail": "internal error (logged)"})


@pytest.mark.parametrize(
    "method, path, status, detail",
    [
        ("get", "/train/000000000000", 404, "no job '000000000000'"),
        ("post", "/train/000000000000/cancel", 404, "no job '000000000000'"),
        ("delete", "/train/000000000000", 404, "no job '000000000000'"),
        ("get", "/datasets/000000000000", 404, "no dataset '000000000000'"),
        ("get", "/datasets/000000000000/preview.png", 404, "no dataset '000000000000'"),
        ("get", "/models/nope/1", 404, "model 'nope' is not loaded (loaded models: tiny)"),
        ("post", "/models/tiny/7/activate", 404, "model 'tiny' has no loaded version 7 (loaded: 1)"),
    ],
)
def test_missing_resource_is_a_404_with_the_message(client, method, path, status, detail):
    response = client.request(method, path, headers=ADMIN)
    assert (response.status_code, response.json()) == (status, {"detail": detail})


def test_unknown_dataset_in_a_train_body_is_a_422_on_that_field(client):
    response = client.post("/train", json={"dataset": "000000000000", "preset": "tiny"}, headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"type": "value_error", "loc": ["body", "dataset"], "msg": "no dataset '000000000000'", "input": None}
    ]


def test_condition_the_model_lacks_is_a_422_on_grains(client):
    (detail,) = client.post("/generate?grains=5").json()["detail"]
    assert detail["loc"] == ["query", "grains"] and "takes no grains condition" in detail["msg"]


def _is_service_error(name: str | None) -> bool:
    cls = getattr(errors, name or "", None)
    return isinstance(cls, type) and issubclass(cls, ServiceError)


def _hand_mappings(source: str) -> list[str]:
    """`except <ServiceError subclass>` clauses whose body raises something that is not a ServiceError."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ExceptHandler) or node.type is None:
            continue
        caught = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
        names = [getattr(name, "attr", getattr(name, "id", "")) for name in caught]
        if not any(_is_service_error(name) for name in names):
            continue
        for raised in (n for statement in node.body for n in ast.walk(statement) if isinstance(n, ast.Raise)):
            call = raised.exc.func if isinstance(raised.exc, ast.Call) else raised.exc
            name = getattr(call, "attr", getattr(call, "id", None))
            if name is not None and not _is_service_error(name):
                found.append(f"line {node.lineno}: except {', '.join(names)} -> raise {name}")
    return found


def test_hand_mapping_is_detected():
    source = "try:\n    get()\nexcept (JobNotFound, OSError) as e:\n    raise HTTPException(404, str(e)) from None\n"
    assert _hand_mappings(source) == ["line 3: except JobNotFound, OSError -> raise HTTPException"]
    validation = "try:\n    get()\nexcept errors.ConfigRejected as e:\n    raise RequestValidationError([])\n"
    assert _hand_mappings(validation) == ["line 3: except ConfigRejected -> raise RequestValidationError"]
    restated = "try:\n    get()\nexcept ModelNotFound as e:\n    raise NotReady(str(e)) from None\n"
    assert _hand_mappings(restated) == []


@pytest.mark.parametrize(
    "path",
    sorted(Path(service.routes.__file__).parent.glob("*.py")) + [Path(errors.__file__).with_name("deps.py")],
    ids=lambda path: path.name,
)
def test_no_router_maps_service_errors_by_hand(path):
    assert _hand_mappings(path.read_text()) == []
