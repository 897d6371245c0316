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
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from service.datasets import DatasetStore
from service.deps import AUTH_RESPONSES, AdminDep, DatasetsDep, JobsDep, SettingsDep
from service.errors import DatasetNotFound, DatasetRejected
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


class _TooLarge(Exception):
    pass


class _Stalled(Exception):
    pass


def _invalid(message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("body", "file"), "msg": message, "input": None}])


def _get(store: DatasetStore, dataset_id: str) -> dict:
    try:
        return store.get(dataset_id)
    except DatasetNotFound as error:
        raise HTTPException(404, str(error)) from None


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
        raise HTTPException(413, f"upload is above the limit of {limit} bytes")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise _invalid("expected multipart/form-data with the dataset in a field named 'file'")
    upload_dir = await run_in_threadpool(store.new_upload)
    try:
        name = await _receive(request, upload_dir / "upload", limit, settings.upload_chunk_timeout_s)
        info = await run_in_threadpool(store.commit, upload_dir, name)
    except _TooLarge:
        raise HTTPException(413, f"upload is above the limit of {limit} bytes") from None
    except _Stalled:
        detail = f"upload stalled: no data for {settings.upload_chunk_timeout_s:g} s"
        raise HTTPException(408, detail, headers={"Connection": "close"}) from None
    except DatasetRejected as error:
        raise _invalid(str(error)) from None
    finally:
        await run_in_threadpool(store.discard, upload_dir)  # a no-op once committed (renamed away)
    return Dataset(**info)


async def _receive(request: Request, target: FilePath, limit: int, chunk_timeout: float) -> str | None:
    """Parse the form with a bounded body (nothing above the limit is buffered) and write the file part.

    A body that stops arriving for `chunk_timeout` seconds raises _Stalled: it must not hold a worker.
    """

    async def bounded() -> AsyncGenerator[bytes, None]:
        received, chunks = 0, request.stream()
        while True:
            try:
                chunk = await asyncio.wait_for(anext(chunks), chunk_timeout)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise _Stalled from None
            received += len(chunk)
            if received > limit + FORM_OVERHEAD:
                raise _TooLarge
            yield chunk

    try:
        form = await MultiPartParser(request.headers, bounded(), max_files=1, max_fields=8).parse()
    except MultiPartException as error:
        raise _invalid(f"malformed multipart body: {error}") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise _invalid("expected the dataset in a multipart file field named 'file'")
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
                raise _TooLarge
            out.write(chunk)


@router.get("", response_model=list[Dataset])
def list_datasets(store: DatasetsDep) -> list[Dataset]:
    """Uploaded datasets, newest first."""
    return [Dataset(**info) for info in store.newest_first()]


@router.get("/{dataset_id}", response_model=Dataset, responses=_NOT_FOUND)
def read_dataset(dataset_id: DatasetId, store: DatasetsDep) -> Dataset:
    """One dataset: image count and shape, value mapping, fingerprint."""
    return Dataset(**_get(store, dataset_id))


@router.get(
    "/{dataset_id}/preview.png",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}, **_NOT_FOUND},
)
def read_dataset_preview(dataset_id: DatasetId, store: DatasetsDep) -> FileResponse:
    """A 4x4 grid of the dataset's first images, as training sees them."""
    try:
        return FileResponse(store.preview(dataset_id), media_type="image/png")
    except DatasetNotFound as error:
        raise HTTPException(404, str(error)) from None


@router.delete(
    "/{dataset_id}",
    status_code=204,
    response_class=Response,
    responses={**AUTH_RESPONSES, **_NOT_FOUND, 409: {"model": Error, "description": "a queued or running job uses it"}},
)
def delete_dataset(_admin: AdminDep, dataset_id: DatasetId, store: DatasetsDep, jobs: JobsDep) -> Response:
    """Remove an uploaded dataset that no queued or running job uses."""
    _get(store, dataset_id)
    if jobs.uses_dataset(dataset_id):
        raise HTTPException(409, f"dataset {dataset_id} is used by a queued or running job")
    try:
        store.delete(dataset_id)
    except (DatasetNotFound, FileNotFoundError):
        raise HTTPException(404, f"no dataset {dataset_id!r}") from None
    return Response(status_code=204)
