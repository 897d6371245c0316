"""The app factory: settings, lifespan (API key, models, batcher, rescans, jobs), middleware, routers and pages.

    >>> import tempfile
    >>> from service.main import create_app
    >>> from service.settings import Settings
    >>> settings = Settings(models_dir="models_store", data_dir=tempfile.mkdtemp(), reload_interval=0)
    >>> app = create_app(settings)                      # nothing loaded yet
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

from fastapi import Depends, FastAPI

from service import errors
from service.auth import load_or_create_key
from service.batcher import Batcher
from service.datasets import DatasetStore
from service.deps import AUTH_RESPONSES, require_admin
from service.headers import SecurityHeaders
from service.jobs import JobManager
from service.limits import ControlGuard
from service.metrics import Metrics, MetricsMiddleware
from service.registry import Registry
from service.routes import datasets, generate, health, jobs, models, web
from service.settings import Settings

log = logging.getLogger(__name__)

DESCRIPTION = """Synthetic 64x64 grain-boundary microstructures from WGAN-GP generators.

The same (model, version, precision, seed, index) always gives the same image, whatever n, start or
concurrent load: fetch a large set page by page with `start`."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    # /docs and /redoc are served by service.routes.web from local files (FastAPI's own load from a CDN).
    app = FastAPI(
        title="microgan",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=_lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.add_middleware(ControlGuard)  # innermost: 422 for control characters, before routing
    app.add_middleware(SecurityHeaders)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)  # outermost: counts every answer
    errors.install(app)  # the one place exceptions become responses: routers let them through
    if settings.protect_generate:
        app.include_router(generate.router, dependencies=[Depends(require_admin)], responses=AUTH_RESPONSES)
    else:
        app.include_router(generate.router)
    for module in (models, jobs, datasets, health, web):
        app.include_router(module.router)
    web.mount_assets(app)
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    logging.getLogger("service").setLevel(settings.log_level.upper())
    configured_key = settings.api_key.get_secret_value() if settings.api_key else None
    app.state.api_key = load_or_create_key(configured_key, settings.data_dir)
    registry = Registry(
        settings.models_dir,
        settings.precision,
        settings.max_batch,
        settings.default_model,
        default_explicit=settings.default_model_explicit,
        metrics=app.state.metrics,
        default_file=settings.data_dir / "default_model.json",
    )
    batcher = Batcher(
        settings.max_batch,
        settings.max_delay_ms / 1000,
        settings.queue_limit,
        app.state.metrics,
        pad=settings.pad_batches,
        workers=settings.batch_workers,
    )
    app.state.registry, app.state.batcher = registry, batcher
    app.state.datasets = DatasetStore(settings.data_dir, settings.max_dataset_bytes, settings.max_dataset_images)
    app.state.datasets.start()
    app.state.jobs = JobManager(
        settings.data_dir,
        settings.models_dir,
        settings.max_concurrent_jobs,
        settings.job_stop_timeout_s,
        on_exported=lambda name, version, activate: _publish(registry, name, version, activate),
    )
    app.state.jobs.start()
    batcher.start()
    # Load in the background: /healthz answers at once, /readyz turns 200 when the default model is warm.
    scans = asyncio.create_task(_scan_forever(registry, settings.reload_interval))
    try:
        yield
    finally:
        scans.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await scans
        # Trainers get SIGTERM, checkpoint and exit; their jobs read interrupted (resumable).
        await asyncio.to_thread(app.state.jobs.stop)
        batcher.stop()


def _publish(registry: Registry, name: str, version: int, activate: bool) -> bool:
    """A job exported name/version: load it now and, when asked, make it the default; True if activated."""
    registry.rescan()
    if activate:
        registry.activate(name, version)  # ModelNotFound when the new version failed to load
    return activate


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
