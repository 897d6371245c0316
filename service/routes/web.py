"""The pages for people: the explorer (`/`), the training dashboard (`/ui/jobs`) and the API docs, all offline.

    open http://localhost:8000/               # choose a model, a seed, see its images; the URL reproduces them
    open http://localhost:8000/ui/jobs        # submit and follow training jobs (asks for the admin key once)
    open http://localhost:8000/docs           # Swagger UI; /redoc: ReDoc (both from local files, no CDN)

Pages are plain HTML files in `service/web/`, their scripts and styles in `service/web/static/` (vendored
libraries beside their licences); no build step. Every page is sent with a Content-Security-Policy
that allows scripts from this origin only (no inline script), so data shown as text stays text.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from service.routes.jobs import JobId

router = APIRouter(include_in_schema=False)

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
STATIC_URL = "/ui/static"
DOCS_ASSETS_URL = "/ui/docs-assets"  # Swagger UI and ReDoc bundles, shipped by the fastapi-offline package

# Our pages: scripts and everything else from this origin only; blob: images are generated images.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI and ReDoc style through <style> elements and ReDoc searches in a blob: worker; scripts stay local.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; "
    "worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


def mount_assets(app: FastAPI) -> None:
    """Serve the pages' static files and the docs' bundles."""
    app.mount(STATIC_URL, StaticFiles(directory=WEB_DIR / "static"), name="web-static")
    docs_assets = Path(str(files("fastapi_offline") / "static"))
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=docs_assets), name="docs-assets")


def _page(name: str, policy: str = PAGE_POLICY) -> FileResponse:
    return FileResponse(WEB_DIR / name, media_type="text/html", headers={"Content-Security-Policy": policy, **_HEADERS})


@router.get("/")
async def read_explorer() -> FileResponse:
    """The explorer: models, their cards, images of any seed."""
    return _page("explorer.html")


@router.get("/ui/jobs")
async def read_jobs_page() -> FileResponse:
    """The training dashboard: the jobs and a form to submit one."""
    return _page("jobs.html")


@router.get("/ui/jobs/{job_id}")
async def read_job_page(job_id: JobId) -> FileResponse:
    """One job, followed live (the page reads the id from its URL)."""
    return _page("job.html")


@router.get("/docs")
async def read_swagger_ui() -> FileResponse:
    """Swagger UI of /openapi.json, from local files."""
    return _page("docs.html", DOCS_POLICY)


@router.get("/redoc")
async def read_redoc() -> FileResponse:
    """ReDoc of /openapi.json, from local files."""
    return _page("redoc.html", DOCS_POLICY)
