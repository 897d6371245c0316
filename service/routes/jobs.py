"""Training jobs over HTTP: submit, list, watch (JSON, Server-Sent Events, images), cancel, resume, delete.

curl -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' localhost:8000/train \\
     -d '{"dataset": {"synthetic": {"count": 2000, "seed": 3}}, "preset": "tiny", "model": "custom"}'
curl localhost:8000/train/<id>
curl -N localhost:8000/train/<id>/events
curl localhost:8000/train/<id>/curves
curl -X POST -H "Authorization: Bearer $KEY" localhost:8000/train/<id>/cancel
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from service import schemas
from service.deps import AUTH_RESPONSES, AdminDep, DatasetsDep, IsAdminDep, JobsDep, SettingsDep
from service.errors import DatasetNotFound, Invalid, JobNotFound
from service.jobs import FINISHED, JobManager
from service.jobstore import Job
from service.redact import public_text
from service.runs import latest_frame, read_curves, read_progress, tail_lines
from service.schemas import Error

router = APIRouter(prefix="/train", tags=["jobs"])

JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", description="job id")]
EVENT_POLL_S = 0.5  # how often the event stream looks at the run
KEEPALIVE_S = 15.0  # a comment line at least this often, so proxies keep the stream open

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Error, "description": "no such job (or nothing of that kind yet)"}
}
_CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": Error, "description": "the job's state does not allow it"}}
_PNG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
    **_NOT_FOUND,
}


def _view(jobs: JobManager, job: Job, log_tail: bool = True, admin: bool = True) -> schemas.Job:
    """The job as JSON; without `admin`, errors and details are public one-liners and there is no log tail."""
    base = f"/train/{job.id}"
    shown = (lambda text: text) if admin else (lambda text: public_text(text, jobs.data_dir, jobs.models_dir))
    return schemas.Job.model_validate(
        {
            "id": job.id,
            "state": job.state,
            "phase": job.phase,
            "created": job.created,
            "started": job.started,
            "finished": job.finished,
            "history": [{**change, "detail": shown(change["detail"])} for change in job.history],
            "dataset": job.spec["dataset"],
            "preset": job.spec["preset"],
            "config": job.spec["config"],
            "resolved_config": job.config,
            "model": job.spec["model"],
            "activate": job.spec["activate"],
            "cancel_requested": job.cancel_requested,
            "progress": read_progress(jobs.run_dir(job)),
            "exported": job.exported if job.state == "succeeded" else None,
            "exit_status": job.exit_status,
            "error": shown(job.error),
            "log_tail": tail_lines(jobs.log_path(job)) if log_tail and admin else None,
            "links": {
                "self": base,
                "events": f"{base}/events",
                "preview": f"{base}/preview.png",
                "animation": f"{base}/animation.gif",
                "losses": f"{base}/losses.png",
                "cancel": f"{base}/cancel",
                "resume": f"{base}/resume",
            },
        }
    )


@router.post(
    "",
    status_code=202,
    response_model=schemas.Job,
    responses={
        400: {"model": Error, "description": "the body is not JSON"},
        **AUTH_RESPONSES,
        409: {"model": Error, "description": "read-only replica, or not the jobs' owner"},
    },
)
def create_job(
    _admin: AdminDep,
    body: schemas.TrainRequest,
    jobs: JobsDep,
    datasets: DatasetsDep,
    settings: SettingsDep,
    response: Response,
) -> schemas.Job:
    """Queue a training job: train on a dataset, export the generator, optionally make it the default."""
    if not settings.models_writable:
        raise HTTPException(409, f"{settings.models_dir} is read-only on this replica: train on the primary")
    if isinstance(body.dataset, str):
        try:
            data_path, images = datasets.path(body.dataset), datasets.get(body.dataset)["count"]
        except DatasetNotFound as error:
            # Named in the body, so the body is at fault (422), not the URL (404).
            raise Invalid(str(error), ("body", "dataset")) from None
        dataset: str | dict = body.dataset
    else:
        data_path, dataset = None, json.loads(body.dataset.model_dump_json())
        images = body.dataset.synthetic.count
    spec = {"dataset": dataset, "preset": body.preset, "config": body.config, "model": body.model}
    job = jobs.submit({**spec, "activate": body.activate}, data_path, images)  # ConfigRejected, JobConflict
    response.headers["Location"] = f"/train/{job.id}"
    return _view(jobs, job)


@router.get("", response_model=list[schemas.Job])
def list_jobs(jobs: JobsDep, admin: IsAdminDep) -> list[schemas.Job]:
    """All jobs, newest first (without log tails)."""
    return [_view(jobs, job, log_tail=False, admin=admin) for job in jobs.newest_first()]


@router.get("/{job_id}", response_model=schemas.Job, responses=_NOT_FOUND)
def read_job(job_id: JobId, jobs: JobsDep, admin: IsAdminDep) -> schemas.Job:
    """A job: state and its history, progress, the exported version, or the error (and, with the key, the log)."""
    return _view(jobs, jobs.get(job_id), admin=admin)


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "`progress` events (JSON: id, state, phase, progress) whenever they change, then one "
            "`end` event with the whole job when it has ended",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **_NOT_FOUND,
    },
)
async def stream_job_events(job_id: JobId, jobs: JobsDep, admin: IsAdminDep) -> StreamingResponse:
    """Server-Sent Events of the job's progress until it ends."""
    await run_in_threadpool(jobs.get, job_id)  # JobNotFound (404) before the stream starts
    return StreamingResponse(
        _events(jobs, job_id, admin),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


async def _events(jobs: JobManager, job_id: str, admin: bool) -> AsyncIterator[str]:
    last, quiet = None, 0.0
    while True:
        try:
            job = await run_in_threadpool(jobs.get, job_id)
        except JobNotFound:
            yield _sse("end", {"id": job_id, "state": "deleted"})
            return
        if job.state in FINISHED:
            view = await run_in_threadpool(_view, jobs, job, True, admin)
            yield _sse("end", view.model_dump())
            return
        progress = await run_in_threadpool(read_progress, jobs.run_dir(job))
        payload = {"id": job.id, "state": job.state, "phase": job.phase, "progress": progress}
        if payload != last:
            yield _sse("progress", payload)
            last, quiet = payload, 0.0
        elif quiet >= KEEPALIVE_S:
            yield ": keep-alive\n\n"
            quiet = 0.0
        await asyncio.sleep(EVENT_POLL_S)
        quiet += EVENT_POLL_S


@router.get("/{job_id}/curves", response_model=schemas.Curves, responses=_NOT_FOUND)
def read_job_curves(job_id: JobId, jobs: JobsDep) -> schemas.Curves:
    """Every progress line so far as columns (step, losses, Wasserstein estimate, GP): the curves to plot."""
    return schemas.Curves(**read_curves(jobs.run_dir(jobs.get(job_id))))


@router.get("/{job_id}/preview.png", response_class=FileResponse, responses=_PNG)
def read_job_preview(job_id: JobId, jobs: JobsDep) -> FileResponse:
    """The latest preview frame: a 4x4 grid from the run's fixed latent grid."""
    frame = latest_frame(jobs.run_dir(jobs.get(job_id)))
    if frame is None:
        raise HTTPException(404, "no preview frame yet")
    return FileResponse(frame, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get(
    "/{job_id}/animation.gif",
    response_class=FileResponse,
    responses={200: {"content": {"image/gif": {"schema": {"type": "string", "format": "binary"}}}}, **_NOT_FOUND},
)
def read_job_animation(job_id: JobId, jobs: JobsDep) -> FileResponse:
    """The preview frames so far as an animated GIF."""
    gif = jobs.animation(jobs.get(job_id))
    if gif is None:
        raise HTTPException(404, "no preview frame yet")
    return FileResponse(gif, media_type="image/gif", headers={"Cache-Control": "no-store"})


@router.get("/{job_id}/losses.png", response_class=FileResponse, responses=_PNG)
def read_job_losses(job_id: JobId, jobs: JobsDep) -> FileResponse:
    """The loss curves, plotted when the training ends."""
    path = jobs.run_dir(jobs.get(job_id)) / "losses.png"
    if not path.is_file():
        raise HTTPException(404, "losses.png is written when the training ends")
    return FileResponse(path, media_type="image/png")


@router.post(
    "/{job_id}/cancel",
    status_code=202,
    response_model=schemas.Job,
    responses={**AUTH_RESPONSES, **_NOT_FOUND, **_CONFLICT},
)
def cancel_job(_admin: AdminDep, job_id: JobId, jobs: JobsDep) -> schemas.Job:
    """Cancel: a queued job at once; a running one gets SIGTERM, checkpoints, and ends cancelled."""
    return _view(jobs, jobs.cancel(job_id))


@router.post(
    "/{job_id}/resume",
    status_code=202,
    response_model=schemas.Job,
    responses={**AUTH_RESPONSES, **_NOT_FOUND, **_CONFLICT},
)
def resume_job(_admin: AdminDep, job_id: JobId, jobs: JobsDep) -> schemas.Job:
    """Queue an interrupted, cancelled or failed job again: it continues from its last checkpoint."""
    return _view(jobs, jobs.resume(job_id))


@router.delete(
    "/{job_id}",
    status_code=204,
    response_class=Response,
    responses={**AUTH_RESPONSES, **_NOT_FOUND, **_CONFLICT},
)
def delete_job(_admin: AdminDep, job_id: JobId, jobs: JobsDep) -> Response:
    """Remove a finished job and its run directory."""
    jobs.delete(job_id)
    return Response(status_code=204)
