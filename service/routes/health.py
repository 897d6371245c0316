"""Liveness, readiness and Prometheus metrics.

curl localhost:8000/healthz
curl localhost:8000/readyz
curl localhost:8000/metrics
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from service.deps import NOT_READY_RETRY_S, RegistryDep
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
    except (NotReady, ModelNotFound) as error:
        raise HTTPException(503, str(error), headers={"Retry-After": str(NOT_READY_RETRY_S)}) from None
    return Ready(model=generator.name, version=generator.version, precision=generator.precision)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def read_metrics(request: Request) -> Response:
    """Prometheus metrics: requests, latency, images, batch sizes, queue depth, loaded versions."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
