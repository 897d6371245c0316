"""The micro-batcher: merges concurrent requests into fixed-shape forward passes on worker threads.

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

Inference never runs on the event loop: `workers` threads take requests from one FIFO queue and run
forward passes of at most `block` images (TensorFlow releases the GIL while it computes, so passes
overlap with each other and with the Python work around them). A pass starts as soon as a block's
worth of images for one model is waiting; a partial pass starts once the oldest request has waited
`max_delay` seconds and no other pass is running, so under load blocks fill up instead of idle
workers computing padding. A request larger than the room left is split across passes. With `pad`
(the default) every pass is padded to `block` rows, so every pass has the same shape: kernel
selection then never depends on load, and an image is the same bytes whatever it was batched with
(tests/service/test_generate.py checks this). Without it a lone request costs one image's compute
instead of a block's. With `encode`, the worker that completes a chunk also encodes it (PNGs).

Admission is by images: `open` reserves n images and raises QueueFull when more than `queue_limit`
would be waiting; the route turns that into 503 + Retry-After, so memory stays bounded under load.
A large request is submitted in chunks (a few in flight at a time), which keeps it from starving
small requests queued behind it and lets the route stream the response.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from service.errors import QueueFull
from service.metrics import Metrics

log = logging.getLogger(__name__)

Model = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (seeds, indices) -> uint8 (B, 64, 64)
Encode = Callable[[np.ndarray], object]  # uint8 (k, 64, 64) -> what the stream yields instead (e.g. PNGs)


class _Job:
    """A contiguous run of images of one seed, filled pass by pass."""

    __slots__ = ("model", "encode", "seeds", "indices", "out", "taken", "filled", "future", "enqueued")

    def __init__(self, model: Model, seed: int, start: int, n: int, encode: Encode | None = None) -> None:
        self.model = model
        self.encode = encode
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
    """Admission (`open`) on the event loop, forward passes on worker threads."""

    def __init__(
        self,
        block: int,
        max_delay: float,
        queue_limit: int,
        metrics: Metrics | None = None,
        pad: bool = True,
        workers: int = 1,
    ) -> None:
        self.block = block
        self.workers = workers
        self.pad = pad
        self.max_delay = max_delay
        self.queue_limit = queue_limit
        self.metrics = metrics
        self._queue: collections.deque[_Job] = collections.deque()
        self._reserved = 0  # images accepted and not yet in a forward pass
        self._cond = threading.Condition()
        self._stopping = False
        self._in_flight = 0  # forward passes running
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._run, name=f"microgan-batcher-{i}", daemon=True) for i in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()

    @property
    def depth(self) -> int:
        return self._reserved

    def open(
        self, model: Model, seed: int, start: int, n: int, chunk: int | None = None, encode: Encode | None = None
    ) -> ImageStream:
        """Reserve n images and return their stream of chunks; QueueFull when the queue has no room.

        With `encode`, each chunk is passed through it on the worker thread that finished it, and the
        stream yields what it returns: encoding then runs beside the next forward pass, off the event loop.
        """
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
        return ImageStream(self, model, seed, start, n, chunk or 4 * self.block, encode)

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

    # The worker threads.

    def _run(self) -> None:
        while True:
            with self._cond:
                pieces = None
                while pieces is None:
                    while not self._queue and not self._stopping:
                        self._cond.wait()
                    if self._stopping:
                        self._fail_all()
                        return
                    # A full block goes at once, to any free worker. A partial one goes when the oldest
                    # request has waited max_delay and no pass is running: while one runs, more requests
                    # arrive to fill the next, instead of a second worker computing padding beside it.
                    oldest = self._queue[0]
                    remaining = oldest.enqueued + self.max_delay - time.monotonic()
                    if self._waiting_for(oldest.model) < self.block and (remaining > 0 or self._in_flight):
                        self._cond.wait(remaining if remaining > 0 else None)
                        continue
                    pieces = self._take()
                    self._in_flight += bool(pieces)
            if pieces:
                try:
                    self._forward(pieces)
                finally:
                    with self._cond:
                        self._in_flight -= 1
                        self._cond.notify_all()

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
                with contextlib.suppress(concurrent.futures.InvalidStateError):
                    job.future.set_exception(error)
            return
        if self.metrics is not None:
            self.metrics.forward.observe(time.perf_counter() - started)
            self.metrics.batch_size.observe(row)
            name, version = getattr(model, "name", "?"), str(getattr(model, "version", "?"))
            self.metrics.images.labels(name, version).inc(row)

        # Hand each job its rows; a job is done when all its images are (its pieces may be computed by
        # different workers, so the count is kept under the lock).
        row, done = 0, []
        for job, offset, count in pieces:
            job.out[offset : offset + count] = images[row : row + count]
            row += count
            with self._cond:
                job.filled += count
                if job.filled == len(job.seeds):
                    done.append(job)
        for job in done:
            _finish(job)

    def _fail_all(self) -> None:
        for job in self._queue:
            if not job.future.done() and (job.taken or job.future.set_running_or_notify_cancel()):
                job.future.set_exception(QueueFull("the service is shutting down"))
        self._queue.clear()


def _finish(job: _Job) -> None:
    """Resolve a job whose images are all computed: its images, or their encoding made here."""
    try:
        result = job.out if job.encode is None else job.encode(job.out)
    except Exception as error:
        log.exception("encoding failed (%s)", job.encode)
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            job.future.set_exception(error)
        return
    with contextlib.suppress(concurrent.futures.InvalidStateError):  # already failed by another pass
        job.future.set_result(result)


class ImageStream:
    """The chunks of one request, in order: an async iterator of uint8 (k, 64, 64) arrays (or their encodings).

    Keeps at most `prefetch` chunks submitted ahead of the consumer. Always close() it (the routes
    do so in a finally): that cancels what was not computed and returns its reservation.
    """

    def __init__(
        self,
        batcher: Batcher,
        model: Model,
        seed: int,
        start: int,
        n: int,
        chunk: int,
        encode: Encode | None = None,
        prefetch: int = 2,
    ) -> None:
        self._batcher = batcher
        self._model = model
        self._encode = encode
        self._seed = seed
        self._next_start = start
        self._left = n  # images not yet submitted (still reserved)
        self._chunk = chunk
        self._prefetch = prefetch
        self._pending: collections.deque[concurrent.futures.Future] = collections.deque()
        self._closed = False

    def __aiter__(self) -> ImageStream:
        return self

    async def __anext__(self) -> np.ndarray | object:
        self._fill()
        if not self._pending:
            raise StopAsyncIteration
        future = self._pending.popleft()
        self._fill()  # keep the worker busy while this chunk is encoded and sent
        return await asyncio.wrap_future(future)

    async def collect(self) -> np.ndarray:
        """All images at once (for formats that need them together; only without `encode`)."""
        return np.concatenate([chunk async for chunk in self])

    def _fill(self) -> None:
        while not self._closed and self._left and len(self._pending) < self._prefetch:
            count = min(self._chunk, self._left)
            job = _Job(self._model, self._seed, self._next_start, count, self._encode)
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
