"""Request and response bodies of the JSON endpoints (images are raw bodies, see service/formats.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from service.generator import Precision
from service.limits import reject_control


class Error(BaseModel):
    detail: str = Field(description="what went wrong, for a person")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    status: Literal["ready"] = "ready"
    model: str = Field(description="the default model")
    version: int = Field(description="its latest loaded version")
    precision: Precision


class GrainRange(BaseModel):
    min: int = Field(description="fewest grains per image the model was trained on")
    max: int = Field(description="most grains per image the model was trained on")


class ModelVersions(BaseModel):
    name: str
    versions: list[int] = Field(description="loaded versions, ascending")
    latest: int
    precision: Precision
    head: str = Field(
        "image",
        description="what the latest version's generator draws: image (pixels), or a partition into grains "
        "(laguerre: a Laguerre tessellation; partition: label maps); partition heads give labels=true their "
        "own grain labels",
    )
    tessellation: bool = Field(
        False,
        description="the latest version draws a Laguerre tessellation: /generate then takes size, width, "
        "format=json (grain polygons) and format=svg",
    )
    conditions: dict[str, GrainRange] = Field(
        default_factory=dict,
        description="what /generate can ask the latest version for besides a seed, with the trained range: "
        '{"grains": {"min": 5, "max": 12}} for a model conditioned on grains per image (grains=)',
    )


class FailedVersion(BaseModel):
    name: str
    version: int
    reason: str = Field(description="why it was skipped; retried when its files change")


class ModelList(BaseModel):
    default: str | None = Field(description="served when a request names no model; null when there is none")
    default_version: int | None = Field(
        None, description="the version served by default: the activated one, else the latest; null when none"
    )
    models: list[ModelVersions]
    failed: list[FailedVersion]


class ReloadReport(BaseModel):
    loaded: list[str] = Field(description="versions loaded by this scan, as name/version")
    removed: list[str] = Field(description="versions whose directory disappeared")
    failed: list[FailedVersion] = Field(
        description="versions that failed to load (in this scan, or earlier and unchanged since)"
    )
    default: str | None


class DefaultModel(BaseModel):
    model: str
    version: int


# Datasets.

DatasetId = Annotated[str, Field(pattern=r"^[0-9a-f]{12}$", description="a dataset id from POST /datasets")]


class Dataset(BaseModel):
    id: str
    name: str = Field(description="the uploaded file's name (metadata only)")
    created: str
    format: Literal["zip", "h5"]
    size: int = Field(description="bytes stored")
    count: int = Field(description="64x64 images after tiling")
    shape: list[int] = Field(description="shape of one image as training sees it")
    dtype: str = Field(description="stored dtype")
    range: list[float] = Field(description="min and max stored value")
    mapping: str = Field(description="how stored values map to [-1, 1]")
    files: int = Field(description="member files read")
    fingerprint: str = Field(description="sha256 of the normalised images")


# Training jobs.

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]


class SyntheticSpec(BaseModel):
    """Options of `python -m training dataset` (planar Voronoi tessellations)."""

    model_config = ConfigDict(extra="forbid")
    count: int = Field(2000, ge=1, le=200_000, description="images")
    seed: int = Field(1, ge=0, le=2**63 - 1)
    grains: tuple[int, int] = Field((5, 12), description="min and max grains per image, 1 <= MIN <= MAX <= 65535")
    width: int = Field(2, ge=1, le=16, description="boundary width, px")
    periodic: bool = Field(False, description="tessellate the torus so images tile")

    @field_validator("grains")
    @classmethod
    def _ordered(cls, grains: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= grains[0] <= grains[1] <= 65535:
            raise ValueError("grains must satisfy 1 <= MIN <= MAX <= 65535")
        return grains


class SyntheticDataset(BaseModel):
    model_config = ConfigDict(extra="forbid")
    synthetic: SyntheticSpec


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: DatasetId | SyntheticDataset = Field(description='an uploaded dataset id, or {"synthetic": {...}}')
    preset: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.-]{1,50}$", description="reference, cpu (training's default) or tiny"
    )
    config: dict[str, Any] = Field(
        default_factory=dict, description="config overrides: the keys of `python -m training train --set`"
    )
    model: str = Field("custom", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$", description="model name to export into")
    activate: bool = Field(False, description="make the exported version the default model when done")

    @model_validator(mode="after")
    def _name_not_a_version(self) -> TrainRequest:
        if self.model.isdigit():
            raise ValueError("model: a name, not a number (numbers are versions)")
        return self

    @field_validator("config")
    @classmethod
    def _printable(cls, config: dict[str, Any]) -> dict[str, Any]:
        reject_control(config, "config")  # keys and values reach files, logs and the trainer's arguments
        return config


class Progress(BaseModel):
    time: float | None = Field(None, description="unix time of this progress line")
    step: int | None = None
    total_steps: int | None = None
    epoch: int | None = None
    epochs: int | None = None
    d_loss: float | None = None
    g_loss: float | None = None
    wasserstein: float | None = Field(None, description="critic's Wasserstein estimate")
    gp: float | None = Field(None, description="gradient penalty")
    g_lr: float | None = None
    d_lr: float | None = None
    images_per_s: float | None = None
    eta_s: float | None = None
    fidelity: dict[str, Any] | None = Field(None, description="latest in-training fidelity figures, with their step")


class Curves(BaseModel):
    """Every progress line of a run as columns (same length, ascending step), for plotting."""

    step: list[int]
    d_loss: list[float | None] = Field(description="critic loss")
    g_loss: list[float | None] = Field(description="generator loss")
    wasserstein: list[float | None] = Field(description="critic's Wasserstein estimate")
    gp: list[float | None] = Field(description="gradient penalty")


class StateChange(BaseModel):
    state: JobState
    time: str
    detail: str | None = None


class Exported(BaseModel):
    model: str
    version: int
    activated: bool


class JobLinks(BaseModel):
    self: str
    events: str
    preview: str
    animation: str
    losses: str
    cancel: str
    resume: str


class Job(BaseModel):
    id: str
    state: JobState
    phase: str | None = Field(description="dataset, train, export or publish: running now, or the last one run")
    created: str
    started: str | None
    finished: str | None
    history: list[StateChange]
    dataset: str | dict[str, Any]
    preset: str | None
    config: dict[str, Any] = Field(description="the overrides as submitted")
    resolved_config: dict[str, Any] | None = Field(description="the full training config they resolve to")
    model: str
    activate: bool
    cancel_requested: bool
    progress: Progress | None
    exported: Exported | None
    exit_status: int | None
    error: str | None = Field(
        description="why it failed: one line, paths relative to the data dir (in full with the admin key)"
    )
    log_tail: list[str] | None = Field(
        description="last lines of the current or last phase's log (only with the admin key; null otherwise)"
    )
    links: JobLinks


class GrainGeometry(BaseModel):
    site: int = Field(description="index of the grain's site in `sites`")
    polygon: list[list[float]] = Field(description="vertices [x, y] in px (y down), in order around the grain")
    area: float = Field(description="px^2")
    centroid: list[float] = Field(description="[x, y] px")
    perimeter: float = Field(description="px, image-frame edges included")
    neighbours: list[int] = Field(description="sites of the grains sharing an edge with it, ascending")
    shared: list[float] = Field(description="length in px of the edge shared with each neighbour, same order")


class ImageGeometry(BaseModel):
    index: int = Field(description="image index: the same image as index i of format=png/zip for this seed")
    seed: int
    sites: list[list[float]] = Field(
        description="every site [x, y] in px; pixel p belongs to the site with the smallest |p - site|^2 - weight"
    )
    weights: list[float] = Field(description="every site's weight in px^2 (absent sites: very negative)")
    grains: list[GrainGeometry] = Field(description="the sites that own part of the image")
    junctions: list[list[float]] = Field(description="points [x, y] px where three or more grains meet")


class GeometryResponse(BaseModel):
    """format=json: the exact geometry of each image, in pixels of a size x size image."""

    model: str
    version: int
    seed: int
    start: int
    n: int
    size: int = Field(description="px: the image side the coordinates refer to")
    width: int = Field(description="px: boundary width the images of this size are drawn with")
    images: list[ImageGeometry]
