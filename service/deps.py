"""Dependencies of the routes, as `Annotated` aliases: the app's settings, registry, batcher, generator.

    @router.post("/generate")
    async def create_images(generator: GeneratorDep, batcher: BatcherDep) -> Response: ...

Tests can swap any of them with `app.dependency_overrides[get_registry] = ...`. They are `async def`
because they never block: FastAPI would run plain `def` dependencies in its thread pool, a thread hop
per dependency per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request

from service.batcher import Batcher
from service.engine import Generator, ModelNotFound, NotReady, Registry
from service.settings import Settings

NOT_READY_RETRY_S = 5  # Retry-After while the models load


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_registry(request: Request) -> Registry:
    return request.app.state.registry


async def get_batcher(request: Request) -> Batcher:
    return request.app.state.batcher


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
BatcherDep = Annotated[Batcher, Depends(get_batcher)]


async def get_generator(
    registry: RegistryDep,
    model: Annotated[str | None, Query(max_length=200, description="model name; default: the default model")] = None,
    version: Annotated[int | None, Query(ge=0, description="model version; default: the latest loaded")] = None,
) -> Generator:
    """The loaded generator a request asks for: 404 when unknown, 503 when the default is not loaded yet."""
    try:
        return registry.get(model, version)
    except ModelNotFound as error:
        raise HTTPException(404, str(error)) from None
    except NotReady as error:
        raise HTTPException(503, str(error), headers={"Retry-After": str(NOT_READY_RETRY_S)}) from None


GeneratorDep = Annotated[Generator, Depends(get_generator)]


async def require_admin() -> None:
    """Gate of the admin endpoints. Open for now: the jobs issue adds the Bearer key check here."""


AdminDep = Annotated[None, Depends(require_admin)]
