"""The app factory: settings, lifespan (models, batcher, rescans), middleware and routers.

    >>> from service.main import create_app
    >>> from service.settings import Settings
    >>> app = create_app(Settings(models_dir="models_store", reload_interval=0))   # nothing loaded yet
    >>> from fastapi.testclient import TestClient
    >>> with TestClient(app) as client:                 # the lifespan starts loading in the background
    ...     status = client.get("/healthz").status_code
    >>> status
    200

Also: `uvicorn --factory service.main:create_app` (settings from the environment), or `python -m service`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from service.batcher import Batcher
from service.engine import Registry
from service.metrics import Metrics, MetricsMiddleware
from service.routes import generate, health, models
from service.settings import Settings

log = logging.getLogger(__name__)

DESCRIPTION = """Synthetic 64x64 grain-boundary microstructures from WGAN-GP generators.

The same (model, version, precision, seed, index) always gives the same image, whatever n, start or
concurrent load: fetch a large set page by page with `start`."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(title="microgan", version="0.1.0", description=DESCRIPTION, lifespan=_lifespan)
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_exception_handler(Exception, _internal_error)
    for module in (generate, models, health):
        app.include_router(module.router)
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    logging.getLogger("service").setLevel(settings.log_level.upper())
    registry = Registry(
        settings.models_dir,
        settings.precision,
        settings.max_batch,
        settings.default_model,
        default_explicit=settings.default_model_explicit,
        metrics=app.state.metrics,
    )
    batcher = Batcher(
        settings.max_batch,
        settings.max_delay_ms / 1000,
        settings.queue_limit,
        app.state.metrics,
        pad=settings.pad_batches,
    )
    app.state.registry, app.state.batcher = registry, batcher
    batcher.start()
    # Load in the background: /healthz answers at once, /readyz turns 200 when the default model is warm.
    scans = asyncio.create_task(_scan_forever(registry, settings.reload_interval))
    try:
        yield
    finally:
        scans.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await scans
        batcher.stop()


async def _scan_forever(registry: Registry, interval: float) -> None:
    """The first scan now, then one every `interval` seconds (never when 0)."""
    while True:
        try:
            report = await asyncio.to_thread(registry.rescan)
            if report["loaded"] or report["removed"]:
                log.info("models loaded: %s; removed: %s", report["loaded"] or "none", report["removed"] or "none")
        except Exception:
            # Surfaced by /readyz (registry.scan_error) until a later scan succeeds.
            log.exception("scanning %s failed", registry.root)
        if interval <= 0:
            return
        await asyncio.sleep(interval)


async def _internal_error(request: Request, error: Exception) -> JSONResponse:
    log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=error)
    return JSONResponse({"detail": "internal error (logged)"}, status_code=500)
