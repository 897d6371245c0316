"""The model store: list, model cards, sample grids, and the admin rescan.

curl localhost:8000/models
curl localhost:8000/models/voronoi64/1
curl localhost:8000/models/voronoi64/1/samples.png -o samples.png
curl -X POST localhost:8000/models/reload
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from service.deps import AdminDep, RegistryDep
from service.engine import Generator, ModelNotFound, Registry
from service.schemas import Error, FailedVersion, ModelList, ModelVersions, ReloadReport

router = APIRouter(prefix="/models", tags=["models"])

NameParam = Annotated[str, Path(description="model name")]
VersionParam = Annotated[int, Path(ge=0, description="model version")]


def _loaded(registry: Registry, name: str, version: int) -> Generator:
    try:
        return registry.get(name, version)
    except ModelNotFound as error:
        raise HTTPException(404, str(error)) from None


@router.get("", response_model=ModelList)
async def list_models(registry: RegistryDep) -> ModelList:
    """List the loaded models and versions, the default model and the versions that failed to load."""
    models, failed = registry.snapshot()
    return ModelList(
        default=registry.default_name(),
        models=[
            ModelVersions(
                name=name, versions=sorted(versions), latest=max(versions), precision=versions[max(versions)].precision
            )
            for name, versions in sorted(models.items())
        ],
        failed=[FailedVersion(name=f.name, version=f.version, reason=f.reason) for f in failed],
    )


@router.post("/reload", response_model=ReloadReport)
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
    return _loaded(registry, name, version).card


@router.get(
    "/{name}/{version}/samples.png",
    response_class=FileResponse,
    responses={
        200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
        404: {"model": Error},
    },
)
async def read_samples(name: NameParam, version: VersionParam, registry: RegistryDep) -> FileResponse:
    """The 4x4 sample grid exported with a loaded version."""
    path = _loaded(registry, name, version).path / "samples.png"
    if not path.is_file():
        raise HTTPException(404, f"model {name!r} version {version} has no samples.png")
    return FileResponse(path, media_type="image/png")
