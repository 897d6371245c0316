"""Request and response bodies of the JSON endpoints (images are raw bodies, see service/formats.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from service.engine import Precision


class Error(BaseModel):
    detail: str = Field(description="what went wrong, for a person")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    status: Literal["ready"] = "ready"
    model: str = Field(description="the default model")
    version: int = Field(description="its latest loaded version")
    precision: Precision


class ModelVersions(BaseModel):
    name: str
    versions: list[int] = Field(description="loaded versions, ascending")
    latest: int
    precision: Precision


class FailedVersion(BaseModel):
    name: str
    version: int
    reason: str = Field(description="why it was skipped; retried when its files change")


class ModelList(BaseModel):
    default: str | None = Field(description="served when a request names no model; null when there is none")
    models: list[ModelVersions]
    failed: list[FailedVersion]


class ReloadReport(BaseModel):
    loaded: list[str] = Field(description="versions loaded by this scan, as name/version")
    removed: list[str] = Field(description="versions whose directory disappeared")
    failed: list[FailedVersion] = Field(
        description="versions that failed to load (in this scan, or earlier and unchanged since)"
    )
    default: str | None
