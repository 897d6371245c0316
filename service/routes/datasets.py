"""Datasets over HTTP: upload (validated by the training side's rules), list, read, delete.

curl -H "Authorization: Bearer $KEY" -F file=@micrographs.zip localhost:8000/datasets
curl localhost:8000/datasets
curl localhost:8000/datasets/<id>/preview.png -o preview.png
curl -X DELETE -H "Authorization: Bearer $KEY" localhost:8000/datasets/<id>
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from pathlib import Path as FilePath
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, HTTPException, Path, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from service.deps import AUTH_RESPONSES, AdminDep, DatasetsDep, JobsDep, SettingsDep
from service.errors import DatasetNotFound, DatasetRejected, UploadStalled, UploadTooLarge
from service.schemas import Dataset, Error

router = APIRouter(prefix="/datasets", tags=["datasets"])

DatasetId = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", description="dataset id")]
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and part headers around the file, bytes
COPY_CHUNK = 1024 * 1024

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Error, "description": "no such dataset"}}
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "a zip (of H5 files or "
                            "images) or one H5 file; its name is kept as metadata only",
                        }
                    },
                }
            }
        },
    }
}


def _too_large(limit: int) -> UploadTooLarge:
    return UploadTooLarge(f"upload is above the limit of {limit} bytes")


@router.post(
    "",
    status_code=201,
    response_model=Dataset,
    openapi_extra=_UPLOAD_BODY,
    responses={
        **AUTH_RESPONSES,
        408: {"model": Error, "description": "the body stopped arriving for upload_chunk_timeout_s"},
        413: {"model": Error, "description": "the file is above max_upload_bytes"},
    },
)
async def create_dataset(_admin: AdminDep, request: Request, store: DatasetsDep, settings: SettingsDep) -> Dataset:
    """Upload a zip or H5 dataset (multipart field `file`); 422 with the reason when it is not usable."""
    limit = settings.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
        raise _too_large(limit)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise DatasetRejected("expected multipart/form-data with the dataset in a field named 'file'")
    upload_dir = await run_in_threadpool(store.new_upload)
    try:
        name = await _receive(request, upload_dir / "upload", limit, settings.upload_chunk_timeout_s)
        info = await run_in_threadpool(store.commit, upload_dir, name)  # DatasetRejected (422) if not usable
    finally:
        await run_in_threadpool(store.discard, upload_dir)  # a no-op once committed (renamed away)
    return Dataset(**info)


async def _receive(request: Request, target: FilePath, limit: int, chunk_timeout: float) -> str | None:
    """Parse the form with a bounded body (nothing above the limit is buffered) and write the file part.

    A body that stops arriving for `chunk_timeout` seconds raises UploadStalled: it must not hold a worker.
    """

    async def bounded() -> AsyncGenerator[bytes, None]:
        received, chunks = 0, request.stream()
        while True:
            try:
                chunk = await asyncio.wait_for(anext(chunks), chunk_timeout)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise UploadStalled(f"upload stalled: no data for {chunk_timeout:g} s") from None
            received += len(chunk)
            if received > limit + FORM_OVERHEAD:
                raise _too_large(limit)
            yield chunk

    try:
        form = await MultiPartParser(request.headers, bounded(), max_files=1, max_fields=8).parse()
    except MultiPartException as error:
        raise DatasetRejected(f"malformed multipart body: {error}") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise DatasetRejected("expected the dataset in a multipart file field named 'file'")
        await run_in_threadpool(_copy, upload.file, target, limit)
        return upload.filename
    finally:
        await form.close()


def _copy(source: BinaryIO, target: FilePath, limit: int) -> None:
    source.seek(0)
    written = 0
    with open(target, "wb") as out:
        while chunk := source.read(COPY_CHUNK):
            written += len(chunk)
            if written > limit:
                raise _too_large(limit)
            out.write(chunk)


@router.get("", response_model=list[Dataset])
def list_datasets(store: DatasetsDep) -> list[Dataset]:
    """Uploaded datasets, newest first."""
    return [Dataset(**info) for info in store.newest_first()]


@router.get("/{dataset_id}", response_model=Dataset, responses=_NOT_FOUND)
def read_dataset(dataset_id: DatasetId, store: DatasetsDep) -> Dataset:
    """One dataset: image count and shape, value mapping, fingerprint."""
    return Dataset(**store.get(dataset_id))


@router.get(
    "/{dataset_id}/preview.png",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}, **_NOT_FOUND},
)
def read_dataset_preview(dataset_id: DatasetId, store: DatasetsDep) -> FileResponse:
    """A 4x4 grid of the dataset's first images, as training sees them."""
    return FileResponse(store.preview(dataset_id), media_type="image/png")


@router.delete(
    "/{dataset_id}",
    status_code=204,
    response_class=Response,
    responses={**AUTH_RESPONSES, **_NOT_FOUND, 409: {"model": Error, "description": "a queued or running job uses it"}},
)
def delete_dataset(_admin: AdminDep, dataset_id: DatasetId, store: DatasetsDep, jobs: JobsDep) -> Response:
    """Remove an uploaded dataset that no queued or running job uses."""
    store.get(dataset_id)  # DatasetNotFound (404)
    if jobs.uses_dataset(dataset_id):
        raise HTTPException(409, f"dataset {dataset_id} is used by a queued or running job")
    try:
        store.delete(dataset_id)
    except FileNotFoundError:  # a concurrent delete won the rename
        raise DatasetNotFound(f"no dataset {dataset_id!r}") from None
    return Response(status_code=204)
