"""Dependencies of the routes, as `Annotated` aliases: settings, registry, batcher, generator, jobs, admin.

    @router.post("/generate")
    async def create_images(generator: GeneratorDep, batcher: BatcherDep) -> Response: ...

Tests can swap any of them with `app.dependency_overrides[get_registry] = ...`. They are `async def`
because they never block: FastAPI would run plain `def` dependencies in its thread pool, a thread hop
per dependency per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.auth import key_matches
from service.batcher import Batcher
from service.datasets import DatasetStore
from service.generator import Generator
from service.jobs import JobManager
from service.limits import Digits
from service.registry import Registry
from service.schemas import Error
from service.settings import Settings


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_registry(request: Request) -> Registry:
    return request.app.state.registry


async def get_batcher(request: Request) -> Batcher:
    return request.app.state.batcher


async def get_jobs(request: Request) -> JobManager:
    return request.app.state.jobs


async def get_datasets(request: Request) -> DatasetStore:
    return request.app.state.datasets


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
BatcherDep = Annotated[Batcher, Depends(get_batcher)]
JobsDep = Annotated[JobManager, Depends(get_jobs)]
DatasetsDep = Annotated[DatasetStore, Depends(get_datasets)]


async def get_generator(
    registry: RegistryDep,
    model: Annotated[str | None, Query(max_length=200, description="model name; default: the default model")] = None,
    version: Annotated[int | None, Digits, Query(ge=0, description="model version; default: the latest loaded")] = None,
) -> Generator:
    """The loaded generator a request asks for; ModelNotFound (404) when unknown, NotReady (503) before it loads."""
    return registry.get(model, version)


GeneratorDep = Annotated[Generator, Depends(get_generator)]


_bearer = HTTPBearer(auto_error=False, description="the admin API key: MICROGAN_API_KEY, or <data_dir>/api_key")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]

AUTH_RESPONSES: dict[int | str, dict] = {
    401: {"model": Error, "description": "no `Authorization: Bearer <key>` header"},
    403: {"model": Error, "description": "wrong key"},
}


async def require_admin(request: Request, credentials: BearerDep) -> None:
    """Gate of the admin endpoints: 401 without a Bearer key, 403 with a wrong one."""
    if credentials is None:
        raise HTTPException(
            401, "admin endpoint: send 'Authorization: Bearer <key>'", headers={"WWW-Authenticate": "Bearer"}
        )
    if not key_matches(request.app.state.api_key, credentials.credentials):
        raise HTTPException(403, "wrong API key")


AdminDep = Annotated[None, Depends(require_admin)]


async def is_admin(request: Request) -> bool:
    """True when the request carries the admin key: open endpoints then show internal detail (log tails).

    Read from the header directly, not through HTTPBearer: the endpoint stays open in the OpenAPI schema.
    """
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and key_matches(request.app.state.api_key, key.strip())


IsAdminDep = Annotated[bool, Depends(is_admin)]
