"""The micro-batcher: merges concurrent requests into fixed-shape forward passes on one worker thread.

    >>> import asyncio, numpy as np
    >>> from service.batcher import Batcher
    >>> def fake(seeds, indices):                  # any callable (seeds, indices) -> uint8 (B, 64, 64)
    ...     return np.broadcast_to((seeds + indices).astype(np.uint8)[:, None, None], (len(seeds), 64, 64))
    >>> batcher = Batcher(block=8, max_delay=0.005, queue_limit=1024)
    >>> batcher.start()
    >>> async def first_chunk():
    ...     stream = batcher.open(fake, seed=7, start=0, n=20)   # reserves 20 images, or raises QueueFull
    ...     try:
    ...         return await anext(stream)
    ...     finally:
    ...         stream.close()
    >>> asyncio.run(first_chunk()).shape
    (20, 64, 64)
    >>> batcher.stop()

Inference never runs on the event loop: one worker thread takes requests from a FIFO queue and runs
forward passes of at most `block` images. It starts a pass when a block's worth of images for one
model is waiting or when the oldest waiting request has waited `max_delay` seconds; a request larger
than the room left is split across passes. With `pad` (the default) every pass is padded to `block`
rows, so every pass has the same shape: kernel selection then never depends on load, and an image is
the same bytes whatever it was batched with (tests/service/test_generate.py checks this). Without
it a lone request costs one image's compute instead of a block's.

Admission is by images: `open` reserves n images and raises QueueFull when more than `queue_limit`
would be waiting; the route turns that into 503 + Retry-After, so memory stays bounded under load.
A large request is submitted in chunks (a few in flight at a time), which keeps it from starving
small requests queued behind it and lets the route stream the response.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from service.metrics import Metrics

log = logging.getLogger(__name__)

Model = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (seeds, indices) -> uint8 (B, 64, 64)


class QueueFull(RuntimeError):
    """Accepting the request would put more than queue_limit images in the queue."""


class _Job:
    """A contiguous run of images of one seed, filled pass by pass."""

    __slots__ = ("model", "seeds", "indices", "out", "taken", "filled", "future", "enqueued")

    def __init__(self, model: Model, seed: int, start: int, n: int) -> None:
        self.model = model
        self.seeds = np.full(n, seed, np.int64)
        self.indices = np.arange(start, start + n, dtype=np.int64)
        self.out = np.empty((n, 64, 64), np.uint8)
        self.taken = 0  # images handed to a forward pass
        self.filled = 0  # images computed
        self.future: concurrent.futures.Future = concurrent.futures.Future()
        self.enqueued = time.monotonic()

    @property
    def waiting(self) -> int:
        return len(self.seeds) - self.taken


class Batcher:
    """Admission (`open`) on the event loop, forward passes on one worker thread."""

    def __init__(
        self, block: int, max_delay: float, queue_limit: int, metrics: Metrics | None = None, pad: bool = True
    ) -> None:
        self.block = block
        self.pad = pad
        self.max_delay = max_delay
        self.queue_limit = queue_limit
        self.metrics = metrics
        self._queue: collections.deque[_Job] = collections.deque()
        self._reserved = 0  # images accepted and not yet in a forward pass
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="microgan-batcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()

    @property
    def depth(self) -> int:
        return self._reserved

    def open(self, model: Model, seed: int, start: int, n: int, chunk: int | None = None) -> ImageStream:
        """Reserve n images and return their stream of chunks; QueueFull when the queue has no room."""
        with self._cond:
            if self._stopping:
                raise QueueFull("the service is shutting down")
            if self._reserved + n > self.queue_limit:
                if self.metrics is not None:
                    self.metrics.rejected.inc()
                raise QueueFull(
                    f"{self._reserved} images queued; {n} more would exceed the limit of {self.queue_limit}"
                )
            self._add_reserved(n)
        return ImageStream(self, model, seed, start, n, chunk or 4 * self.block)

    # Called by ImageStream.

    def _submit(self, job: _Job) -> None:
        with self._cond:
            if self._stopping:
                job.future.set_exception(QueueFull("the service is shutting down"))
                return
            self._queue.append(job)
            self._cond.notify()

    def _release(self, n: int) -> None:
        with self._cond:
            self._add_reserved(-n)

    def _add_reserved(self, n: int) -> None:
        self._reserved += n
        if self.metrics is not None:
            self.metrics.queue_depth.set(self._reserved)

    # The worker thread.

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    self._fail_all()
                    return
                # Wait for a full block or the oldest request's deadline, whichever comes first.
                deadline = self._queue[0].enqueued + self.max_delay
                while not self._stopping and self._waiting_for(self._queue[0].model) < self.block:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                pieces = self._take()
            if pieces:
                self._forward(pieces)

    def _waiting_for(self, model: Model) -> int:
        return sum(job.waiting for job in self._queue if job.model is model)

    def _take(self) -> list[tuple[_Job, int, int]]:
        """Up to `block` images of the oldest job's model, in queue order: (job, offset, count)."""
        pieces: list[tuple[_Job, int, int]] = []
        room = self.block
        model = None
        for job in list(self._queue):
            if job.taken == 0 and job.future.cancelled():
                self._drop(job)  # the client went away before any of it was computed
                continue
            if model is None:
                model = job.model
            if job.model is not model:
                continue
            if job.taken == 0 and not job.future.set_running_or_notify_cancel():
                self._drop(job)  # cancelled just now
                continue
            count = min(room, job.waiting)
            pieces.append((job, job.taken, count))
            job.taken += count
            room -= count
            if job.waiting == 0:
                self._queue.remove(job)
            if room == 0:
                break
        self._add_reserved(-(self.block - room))
        return pieces

    def _drop(self, job: _Job) -> None:
        self._queue.remove(job)
        self._add_reserved(-job.waiting)

    def _forward(self, pieces: list[tuple[_Job, int, int]]) -> None:
        # Pad to the fixed block shape; padding rows are (seed 0, index 0), a valid input.
        rows = self.block if self.pad else sum(count for _, _, count in pieces)
        seeds = np.zeros(rows, np.int64)
        indices = np.zeros(rows, np.int64)
        row = 0
        for job, offset, count in pieces:
            seeds[row : row + count] = job.seeds[offset : offset + count]
            indices[row : row + count] = job.indices[offset : offset + count]
            row += count
        model = pieces[0][0].model
        started = time.perf_counter()
        try:
            images = model(seeds, indices)
        except Exception as error:
            log.exception("forward pass failed (%s)", model)
            for job, _, _ in pieces:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        if self.metrics is not None:
            self.metrics.forward.observe(time.perf_counter() - started)
            self.metrics.batch_size.observe(row)
            name, version = getattr(model, "name", "?"), str(getattr(model, "version", "?"))
            self.metrics.images.labels(name, version).inc(row)

        # Hand each job its rows; a job is done when all its images are.
        row = 0
        for job, offset, count in pieces:
            job.out[offset : offset + count] = images[row : row + count]
            row += count
            job.filled += count
            if job.filled == len(job.seeds) and not job.future.done():
                job.future.set_result(job.out)

    def _fail_all(self) -> None:
        for job in self._queue:
            if not job.future.done() and (job.taken or job.future.set_running_or_notify_cancel()):
                job.future.set_exception(QueueFull("the service is shutting down"))
        self._queue.clear()


class ImageStream:
    """The chunks of one request, in order: an async iterator of uint8 (k, 64, 64) arrays.

    Keeps at most `prefetch` chunks submitted ahead of the consumer. Always close() it (the routes
    do so in a finally): that cancels what was not computed and returns its reservation.
    """

    def __init__(
        self, batcher: Batcher, model: Model, seed: int, start: int, n: int, chunk: int, prefetch: int = 2
    ) -> None:
        self._batcher = batcher
        self._model = model
        self._seed = seed
        self._next_start = start
        self._left = n  # images not yet submitted (still reserved)
        self._chunk = chunk
        self._prefetch = prefetch
        self._pending: collections.deque[concurrent.futures.Future] = collections.deque()
        self._closed = False

    def __aiter__(self) -> ImageStream:
        return self

    async def __anext__(self) -> np.ndarray:
        self._fill()
        if not self._pending:
            raise StopAsyncIteration
        future = self._pending.popleft()
        self._fill()  # keep the worker busy while this chunk is encoded and sent
        return await asyncio.wrap_future(future)

    async def collect(self) -> np.ndarray:
        """All images at once (for formats that need them together)."""
        return np.concatenate([chunk async for chunk in self])

    def _fill(self) -> None:
        while not self._closed and self._left and len(self._pending) < self._prefetch:
            count = min(self._chunk, self._left)
            job = _Job(self._model, self._seed, self._next_start, count)
            self._batcher._submit(job)
            self._pending.append(job.future)
            self._next_start += count
            self._left -= count

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for future in self._pending:
            future.cancel()  # a job already in a pass finishes; one still queued is dropped by the worker
        self._pending.clear()
        if self._left:
            self._batcher._release(self._left)
            self._left = 0

    def __del__(self) -> None:
        # A safety net: a streamed response whose body never started (client gone before the first
        # byte) never runs the route's finally, and its reservation must still be returned.
        self.close()
