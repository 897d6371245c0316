"""POST /generate: n images of a seed, the same bytes every time, in the format the caller's tool wants.

curl -X POST 'localhost:8000/generate?n=32&seed=7' -o batch.zip
curl -X POST 'localhost:8000/generate?n=100&seed=7&start=100&format=npy' -o page2.npy
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from microstructure.images import SIZE
from service import formats, geometry
from service.conditions import with_grains
from service.deps import BatcherDep, GeneratorDep, SettingsDep
from service.errors import Invalid
from service.formats import GEOMETRY_FORMATS, MEDIA_TYPES, Batch, Format
from service.image_stream import ImageStream
from service.limits import Digits
from service.schemas import Error, GeometryResponse

router = APIRouter(tags=["generate"])

MAX_INT64 = 2**63 - 1
MAX_GRAINS = 65535  # labels are uint16; a model's own range is checked against its card

_HEADERS = {
    "X-Seed": "the seed used (chosen at random when the request gave none)",
    "X-Size": "tessellation models drawn at another size: the image side in px",
    "X-Width": "tessellation models drawn at another size: the boundary width in px",
    "X-Model": "model name",
    "X-Model-Version": "model version",
    "X-Precision": "float32 or float16 (a GPU computes in float16: slightly different images)",
    "X-Grains": "the grains per image asked for (grains=)",
    "Content-Disposition": "a file name for the download",
}
_IMAGE_RESPONSE = {
    "description": "png (n=1) or grid: a PNG; zip: PNGs and manifest.json; h5: `images` (n, size, size) uint8 "
    "[+ `labels` uint16] with attributes; npy: a uint8 (n, size, size) array; json (tessellation models): "
    "GeometryResponse; svg (tessellation models): one SVG (n=1 or grid=true) or a zip of SVGs",
    "model": GeometryResponse,
    "content": {
        media: {"schema": {"type": "string", "format": "binary"}}
        for media in sorted(set(MEDIA_TYPES.values()) - {"application/json"})
    },
    "headers": {name: {"description": text, "schema": {"type": "string"}} for name, text in _HEADERS.items()},
}


@router.post(
    "/generate",
    response_class=Response,
    responses={
        200: _IMAGE_RESPONSE,
        404: {"model": Error, "description": "unknown model or version"},
        413: {"model": Error, "description": "n above max_n, or n x size^2 above max_render_bytes"},
        503: {"model": Error, "description": "queue full or default model not loaded; see Retry-After"},
    },
)
async def create_images(
    generator: GeneratorDep,
    batcher: BatcherDep,
    settings: SettingsDep,
    n: Annotated[int, Digits, Query(ge=1, description="number of images (at most max_n)")] = 1,
    seed: Annotated[
        int | None, Digits, Query(ge=0, le=MAX_INT64, description="default: random, returned in X-Seed")
    ] = None,
    start: Annotated[int, Digits, Query(ge=0, le=MAX_INT64, description="index of the first image (paging)")] = 0,
    format: Annotated[Format | None, Query(description="default: png for n=1, zip otherwise")] = None,
    labels: Annotated[
        bool,
        Query(
            description="h5 only: add grain label maps (the generator's own partition when the model draws "
            "one, else a segmentation of the images)"
        ),
    ] = False,
    size: Annotated[
        int | None,
        Digits,
        Query(ge=64, le=2048, description="tessellation models: the same microstructures drawn at size x size px"),
    ] = None,
    width: Annotated[
        int | None,
        Digits,
        Query(ge=1, le=512, description="tessellation models: boundary width in px (default: the model's)"),
    ] = None,
    grid: Annotated[bool, Query(description="svg only: all n images in one SVG mosaic")] = False,
    grains: Annotated[
        int | None,
        Digits,
        Query(
            ge=1,
            le=MAX_GRAINS,
            description="models conditioned on grains (GET /models lists each model's conditions and range): "
            "every image drawn with this many grains; the same image for the same (model, seed, index, grains)",
        ),
    ] = None,
) -> Response:
    """Generate n images of a seed; image i is the same whatever n, start or concurrent load."""
    if n > settings.max_n:
        raise HTTPException(413, f"n={n} is above max_n={settings.max_n}: fetch pages with start=")
    fmt = format or (Format.png if n == 1 else Format.zip)
    if fmt is Format.png and n > 1:
        raise Invalid("format=png holds one image: use format=zip or format=grid for n > 1", ("query", "format"))
    if labels and fmt is not Format.h5:
        raise Invalid("labels=true needs format=h5", ("query", "labels"))
    if start > MAX_INT64 - (n - 1):
        raise Invalid(f"start + n - 1 must be at most {MAX_INT64}", ("query", "start"))
    if grid and fmt is not Format.svg:
        raise Invalid("grid=true needs format=svg (format=grid is the PNG mosaic)", ("query", "grid"))
    if seed is None:
        seed = secrets.randbelow(MAX_INT64 + 1)
    # What draws the images: the model, or the model asked for a grain count (ConditionError, 422,
    # outside its range).
    drawer = generator if grains is None else with_grains(generator, grains)

    batch = Batch(generator.name, generator.version, seed, start, n, generator.z_dim, generator.precision, grains)
    if size is not None or width is not None or fmt in GEOMETRY_FORMATS:
        drawn = _geometry_request(drawer, settings, n, fmt, size, width)
        if drawn is not None:
            return await _geometry_response(drawer, batch, fmt, drawn, labels, grid)
    # png and zip are encoded by the batcher's workers, beside the next forward pass.
    encode = formats.pngs if fmt in (Format.png, Format.zip) else None
    stream = batcher.open(drawer, seed, start, n, encode=encode)  # QueueFull (503) when it has no room
    disposition = "inline" if fmt in (Format.png, Format.grid) else "attachment"
    headers = _headers(batch, f'{disposition}; filename="{batch.download_name(fmt)}"')
    if fmt in (Format.zip, Format.npy):
        return StreamingResponse(_streamed(fmt, batch, stream), media_type=MEDIA_TYPES[fmt], headers=headers)

    try:
        if fmt is Format.png:
            (body,) = await anext(stream)
            return Response(body, media_type=MEDIA_TYPES[fmt], headers=headers)
        images = await stream.collect()
    finally:
        stream.close()
    if fmt is Format.grid:
        body = await run_in_threadpool(formats.grid_png, images)
    else:
        body = await run_in_threadpool(_h5_with_labels, generator, batch, images, labels)
    return Response(body, media_type=MEDIA_TYPES[fmt], headers=headers)


def _headers(batch: Batch, disposition: str) -> dict[str, str]:
    headers = {
        "X-Seed": str(batch.seed),
        "X-Model": batch.model,
        "X-Model-Version": str(batch.version),
        "X-Precision": batch.precision,
        "Content-Disposition": disposition,
    }
    if batch.grains is not None:
        headers["X-Grains"] = str(batch.grains)
    return headers


def _geometry_request(
    generator, settings, n: int, fmt: Format, size: int | None, width: int | None
) -> tuple[int, int] | None:
    """(size, width) to draw a tessellation model at, None for its own 64 px images; 422/413 on bad input."""
    if not geometry.has_tessellation(generator):
        raise Invalid(
            f"model {generator.name!r} version {generator.version} has no tessellation ({generator.head} head): "
            "size, width, format=json and format=svg need a laguerre model (GET /models gives each model's head)",
            ("query", "format" if fmt in GEOMETRY_FORMATS else ("size" if size is not None else "width")),
        )
    size = size or SIZE
    width = width or generator.render_width
    if width > size // 4:
        raise Invalid(
            f"width={width} px leaves no grain interior at size={size} (at most size/4 = {size // 4})",
            ("query", "width"),
        )
    if fmt not in GEOMETRY_FORMATS and n * size * size > settings.max_render_bytes:
        raise HTTPException(
            413,
            f"n x size^2 = {n * size * size} bytes of images is above max_render_bytes={settings.max_render_bytes}: "
            "ask for fewer images per request (start= pages through them) or a smaller size",
        )
    if fmt not in GEOMETRY_FORMATS and size == SIZE and width == generator.render_width:
        return None  # the model's own images, as drawn by its sample signature
    return size, width


async def _geometry_response(generator, batch: Batch, fmt: Format, drawn: tuple[int, int], labels: bool, grid: bool):
    size, width = drawn
    headers = _headers(batch, f'attachment; filename="{batch.download_name(fmt, grid)}"')
    headers.update({"X-Size": str(size), "X-Width": str(width)})
    sites, weights = await run_in_threadpool(geometry.sites_of, generator, batch.seed, batch.start, batch.n)
    if fmt is Format.json:
        return StreamingResponse(
            geometry.json_chunks(batch, sites, weights, size, width), media_type="application/json", headers=headers
        )
    if fmt is Format.svg:
        body, media = await run_in_threadpool(_svg_body, batch, sites, weights, size, width, grid)
        return Response(body, media_type=media, headers=headers)
    body = await run_in_threadpool(_drawn_body, batch, fmt, sites, weights, size, width, labels)
    return Response(body, media_type=MEDIA_TYPES[fmt], headers=headers)


def _svg_body(batch: Batch, sites, weights, size: int, width: int, grid: bool) -> tuple[bytes, str]:
    """One SVG (n=1, or the grid of all n), else a zip of one SVG per image; with its media type."""
    if grid:
        return geometry.svg(sites, weights, size, width).encode(), MEDIA_TYPES[Format.svg]
    if batch.n == 1:
        return geometry.svg(sites[0], weights[0], size, width).encode(), MEDIA_TYPES[Format.svg]
    archive = formats.ZipStream(batch, extension="svg")
    files = [geometry.svg(s, w, size, width).encode() for s, w in zip(sites, weights)]
    return archive.begin() + archive.add_files(files) + archive.end(), MEDIA_TYPES[Format.zip]


def _drawn_body(batch: Batch, fmt: Format, sites, weights, size: int, width: int, labels: bool) -> bytes:
    """A raster format of the images drawn at size x size from the model's geometry."""
    from microstructure.stats import grain_ids

    images, owners = geometry.draw(sites, weights, size, width)
    if fmt is Format.png:
        return formats.png(images)
    if fmt is Format.grid:
        return formats.grid_png(images)
    if fmt is Format.npy:
        return formats.npy_header(batch.n, (size, size)) + images.tobytes()
    if fmt is Format.h5:
        return formats.h5(batch, images, grain_ids(owners) if labels else None, "partition")
    archive = formats.ZipStream(batch)
    return archive.begin() + archive.add(images) + archive.end()


def _h5_with_labels(generator, batch: Batch, images, labels: bool) -> bytes:
    """The h5 body; grain labels (1..k in raster order) from the model's partition, or by segmentation."""
    from microstructure.stats import grain_ids, segment

    if not labels:
        return formats.h5(batch, images, None)
    if generator.has_partition:
        indices = np.arange(batch.start, batch.start + batch.n, dtype=np.int64)
        partition = generator.partition(np.full(batch.n, batch.seed, np.int64), indices)["labels"]
        return formats.h5(batch, images, grain_ids(partition), "partition")
    return formats.h5(batch, images, segment(images), "segmentation")


async def _streamed(fmt: Format, batch: Batch, stream: ImageStream) -> AsyncIterator[bytes]:
    """The body chunk by chunk, so a large n never sits in memory whole."""
    try:
        if fmt is Format.npy:
            yield formats.npy_header(batch.n)
            async for images in stream:
                yield images.tobytes()
            return
        archive = formats.ZipStream(batch)
        yield archive.begin()
        async for encoded in stream:
            yield archive.add_files(encoded)
        yield archive.end()
    finally:
        stream.close()
