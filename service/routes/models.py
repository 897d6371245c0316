"""The model store: list, model cards, sample grids, and the admin calls (rescan, activate, delete).

curl localhost:8000/models
curl localhost:8000/models/voronoi64/1
curl localhost:8000/models/voronoi64/1/samples.png -o samples.png
curl localhost:8000/models/voronoi64/1/training.gif -o training.gif
curl -X POST -H "Authorization: Bearer $KEY" localhost:8000/models/reload
curl -X POST -H "Authorization: Bearer $KEY" localhost:8000/models/voronoi64/2/activate
curl -X DELETE -H "Authorization: Bearer $KEY" localhost:8000/models/voronoi64/1
"""

from __future__ import annotations

import os
import shutil
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from service.conditions import conditions_of
from service.deps import AUTH_RESPONSES, AdminDep, RegistryDep, SettingsDep
from service.geometry import has_tessellation
from service.limits import Digits
from service.registry import Registry
from service.schemas import DefaultModel, Error, FailedVersion, GrainRange, ModelList, ModelVersions, ReloadReport
from service.settings import Settings

router = APIRouter(prefix="/models", tags=["models"])

NameParam = Annotated[str, Path(description="model name")]
VersionParam = Annotated[int, Digits, Path(ge=0, description="model version")]


@router.get("", response_model=ModelList)
async def list_models(registry: RegistryDep) -> ModelList:
    """List the loaded models and versions, the default model and the versions that failed to load."""
    models, failed = registry.snapshot()
    key = registry.default_key()
    return ModelList(
        default=registry.default_name(),
        default_version=key[1] if key else None,
        models=[
            ModelVersions(
                name=name,
                versions=sorted(versions),
                latest=max(versions),
                precision=versions[max(versions)].precision,
                head=versions[max(versions)].head,
                tessellation=has_tessellation(versions[max(versions)]),
                conditions={k: GrainRange(**v) for k, v in conditions_of(versions[max(versions)]).items()},
            )
            for name, versions in sorted(models.items())
        ],
        failed=[FailedVersion(name=f.name, version=f.version, reason=f.reason) for f in failed],
    )


@router.post("/reload", response_model=ReloadReport, responses=AUTH_RESPONSES)
async def reload_models(_admin: AdminDep, registry: RegistryDep) -> ReloadReport:
    """Rescan the store now: load and warm up new versions, skip broken ones, drop vanished ones."""
    report = await run_in_threadpool(registry.rescan)
    return ReloadReport(
        loaded=report["loaded"],
        removed=report["removed"],
        default=registry.default_name(),
        failed=[FailedVersion(name=f.name, version=f.version, reason=f.reason) for f in report["failed"]],
    )


@router.get("/{name}/{version}", responses={404: {"model": Error}})
async def read_model(name: NameParam, version: VersionParam, registry: RegistryDep) -> dict[str, Any]:
    """The model card (model.json) of a loaded version."""
    return registry.get(name, version).card


def _file_responses(media: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {media: {"schema": {"type": "string", "format": "binary"}}}}, 404: {"model": Error}}


def _version_file(registry: Registry, name: str, version: int, file_name: str, media: str) -> FileResponse:
    """A picture exported with a loaded version; 404 when the version has none."""
    path = registry.get(name, version).path / file_name
    if not path.is_file():
        raise HTTPException(404, f"model {name!r} version {version} has no {file_name}")
    return FileResponse(path, media_type=media)


@router.get("/{name}/{version}/samples.png", response_class=FileResponse, responses=_file_responses("image/png"))
async def read_samples(name: NameParam, version: VersionParam, registry: RegistryDep) -> FileResponse:
    """The 4x4 sample grid exported with a loaded version."""
    return _version_file(registry, name, version, "samples.png", "image/png")


@router.get("/{name}/{version}/training.gif", response_class=FileResponse, responses=_file_responses("image/gif"))
async def read_training_animation(name: NameParam, version: VersionParam, registry: RegistryDep) -> FileResponse:
    """The training animation (preview frames of its run) exported with a loaded version, when it has one."""
    return _version_file(registry, name, version, "training.gif", "image/gif")


_WRITES = {
    **AUTH_RESPONSES,
    404: {"model": Error, "description": "no such loaded version"},
    409: {"model": Error, "description": "read-only replica, or (delete) the version is the default"},
}


def _writable(settings: Settings) -> None:
    if not settings.models_writable:
        raise HTTPException(409, f"{settings.models_dir} is read-only on this replica: do this on the primary")


@router.post("/{name}/{version}/activate", response_model=DefaultModel, responses=_WRITES)
async def activate_model(
    _admin: AdminDep, name: NameParam, version: VersionParam, registry: RegistryDep, settings: SettingsDep
) -> DefaultModel:
    """Make a loaded version the default model (kept in the data dir: it survives restarts)."""
    _writable(settings)
    await run_in_threadpool(registry.activate, name, version)  # ModelNotFound (404) unless loaded
    return DefaultModel(model=name, version=version)


@router.delete("/{name}/{version}", status_code=204, response_class=Response, responses=_WRITES)
async def delete_model(
    _admin: AdminDep, name: NameParam, version: VersionParam, registry: RegistryDep, settings: SettingsDep
) -> Response:
    """Remove a version that is not the default from the store (and unload it)."""
    _writable(settings)
    models, failed = registry.snapshot()
    # Only versions the scanner found (loaded or failed): their names came from the directory itself.
    if version not in models.get(name, {}) and not any((f.name, f.version) == (name, version) for f in failed):
        raise HTTPException(404, f"model {name!r} has no version {version} in the store")
    pinned = (registry.default_model, registry.default_version)
    if (name, version) in (registry.default_key(), pinned):
        raise HTTPException(409, f"{name}/{version} is the default model: activate another version first")
    await run_in_threadpool(_remove_version, registry, name, version)
    return Response(status_code=204)


def _remove_version(registry: Registry, name: str, version: int) -> None:
    # Renamed out of the scanner's sight first (it skips non-integer names), so no scan reloads it midway.
    source = registry.root / name / str(version)
    doomed = source.with_name(f".deleting-{version}-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(source, doomed)
    except FileNotFoundError:  # already gone from the disk
        registry.unload(name, version)
        return
    registry.unload(name, version)
    shutil.rmtree(doomed)
