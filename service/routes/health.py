"""Liveness, readiness and Prometheus metrics.

curl localhost:8000/healthz
curl localhost:8000/readyz
curl localhost:8000/metrics
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from service.deps import RegistryDep
from service.errors import ModelNotFound, NotReady
from service.schemas import Error, Health, Ready

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def read_health() -> Health:
    """Alive: the process answers HTTP."""
    return Health()


@router.get("/readyz", response_model=Ready, responses={503: {"model": Error, "description": "not ready, and why"}})
async def read_readiness(registry: RegistryDep) -> Ready:
    """Ready: the default model is loaded and warmed up."""
    try:
        generator = registry.get(None, None)
    except ModelNotFound as error:
        # The default vanished between two looks (a rescan swapped the models): not ready, not a 404.
        raise NotReady(str(error)) from None
    return Ready(model=generator.name, version=generator.version, precision=generator.precision)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def read_metrics(request: Request) -> Response:
    """Prometheus metrics: requests, latency, images, batch sizes, queue depth, loaded versions."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
