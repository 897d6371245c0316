"""What user input may look like, checked once at the edge, the same way for every route.

    >>> from typing import Annotated
    >>> from fastapi import Query
    >>> from service.limits import Digits
    >>> n: Annotated[int, Digits, Query(ge=1)] = 1      # "1_000", "+5", " 1" and "1e3" answer 422

- Integers in a query or a path are written in plain decimal digits (an optional minus, so a negative
  value is reported against its range): Python's int() would also take "1_000", "+5" or " 1", and
  such a value would then be echoed, logged or cached under another spelling.
- No control character (U+0000..U+001F, U+007F) in a path or a query (`ControlGuard`, before
  routing) nor in a JSON body's text (`reject_control`, from the schemas): text that reaches a file
  name, a process argument, a header or a log line is printable, or the request answers 422 naming
  where the character is.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BeforeValidator
from starlette.types import ASGIApp, Receive, Scope, Send

CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DIGITS = re.compile(r"-?[0-9]{1,40}")


def _digits(value: object) -> object:
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value):
            raise ValueError("must be an integer in plain decimal digits (no sign, spaces, '_' or exponent)")
        return int(value)
    return value


Digits = BeforeValidator(_digits)


def reject_control(value: Any, where: str) -> None:
    """ValueError naming `where` (a dotted path) when any text inside value (keys included) has a control character."""
    if isinstance(value, str):
        if CONTROL.search(value):
            raise ValueError(f"{where}: control characters are not allowed, got {value!r}")
    elif isinstance(value, dict):
        for key, item in value.items():
            reject_control(key, f"{where} key")
            reject_control(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            reject_control(item, f"{where}[{index}]")


class ControlGuard:
    """422 before routing for a path or a query holding a control character (after percent-decoding)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            bad = _control_in(scope)
            if bad is not None:
                loc, text = bad
                body = {"detail": [{"type": "value_error", "loc": loc, "msg": text, "input": None}]}
                await send(
                    {
                        "type": "http.response.start",
                        "status": 422,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": json.dumps(body).encode()})
                return
        await self.app(scope, receive, send)


def _control_in(scope: Scope) -> tuple[list[str], str] | None:
    if CONTROL.search(scope["path"]):
        return ["path"], f"control characters are not allowed in the path, got {scope['path']!r}"
    query = scope["query_string"].decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
        if CONTROL.search(name) or CONTROL.search(value):
            return ["query", name], f"control characters are not allowed, got {value!r}"
    return None
