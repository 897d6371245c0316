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

import collections
import concurrent.futures
import contextlib
import logging
import threading
import time

import numpy as np

from service.errors import QueueFull
from service.image_stream import Chunk, Encode, ImageStream, Model
from service.metrics import Metrics

log = logging.getLogger(__name__)


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
        self._queue: collections.deque[Chunk] = collections.deque()
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

    def _submit(self, chunk: Chunk) -> None:
        with self._cond:
            if self._stopping:
                chunk.future.set_exception(QueueFull("the service is shutting down"))
                return
            self._queue.append(chunk)
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
        return sum(chunk.waiting for chunk in self._queue if chunk.model is model)

    def _take(self) -> list[tuple[Chunk, int, int]]:
        """Up to `block` images of the oldest chunk's model, in queue order: (chunk, offset, count)."""
        pieces: list[tuple[Chunk, int, int]] = []
        room = self.block
        model = None
        for chunk in list(self._queue):
            if chunk.taken == 0 and chunk.future.cancelled():
                self._drop(chunk)  # the client went away before any of it was computed
                continue
            if model is None:
                model = chunk.model
            if chunk.model is not model:
                continue
            if chunk.taken == 0 and not chunk.future.set_running_or_notify_cancel():
                self._drop(chunk)  # cancelled just now
                continue
            count = min(room, chunk.waiting)
            pieces.append((chunk, chunk.taken, count))
            chunk.taken += count
            room -= count
            if chunk.waiting == 0:
                self._queue.remove(chunk)
            if room == 0:
                break
        self._add_reserved(-(self.block - room))
        return pieces

    def _drop(self, chunk: Chunk) -> None:
        self._queue.remove(chunk)
        self._add_reserved(-chunk.waiting)

    def _forward(self, pieces: list[tuple[Chunk, int, int]]) -> None:
        # Pad to the fixed block shape; padding rows are (seed 0, index 0), a valid input.
        rows = self.block if self.pad else sum(count for _, _, count in pieces)
        seeds = np.zeros(rows, np.int64)
        indices = np.zeros(rows, np.int64)
        row = 0
        for chunk, offset, count in pieces:
            seeds[row : row + count] = chunk.seeds[offset : offset + count]
            indices[row : row + count] = chunk.indices[offset : offset + count]
            row += count
        model = pieces[0][0].model
        started = time.perf_counter()
        try:
            images = model(seeds, indices)
        except Exception as error:
            log.exception("forward pass failed (%s)", model)
            for chunk, _, _ in pieces:
                with contextlib.suppress(concurrent.futures.InvalidStateError):
                    chunk.future.set_exception(error)
            return
        if self.metrics is not None:
            self.metrics.forward.observe(time.perf_counter() - started)
            self.metrics.batch_size.observe(row)
            name, version = getattr(model, "name", "?"), str(getattr(model, "version", "?"))
            self.metrics.images.labels(name, version).inc(row)

        # Hand each chunk its rows; a chunk is done when all its images are (its pieces may be computed by
        # different workers, so the count is kept under the lock).
        row, done = 0, []
        for chunk, offset, count in pieces:
            chunk.out[offset : offset + count] = images[row : row + count]
            row += count
            with self._cond:
                chunk.filled += count
                if chunk.filled == len(chunk.seeds):
                    done.append(chunk)
        for chunk in done:
            chunk.finish()

    def _fail_all(self) -> None:
        for chunk in self._queue:
            if not chunk.future.done() and (chunk.taken or chunk.future.set_running_or_notify_cancel()):
                chunk.future.set_exception(QueueFull("the service is shutting down"))
        self._queue.clear()
