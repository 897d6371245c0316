"""The stream of one request's images: chunks submitted to the micro-batcher and awaited in order.

    >>> import asyncio, numpy as np
    >>> from service.batcher import Batcher
    >>> batcher = Batcher(block=8, max_delay=0.005, queue_limit=1024)
    >>> batcher.start()
    >>> model = lambda seeds, indices: np.zeros((len(seeds), 64, 64), np.uint8)
    >>> async def sizes():
    ...     stream = batcher.open(model, seed=7, start=0, n=20, chunk=8)   # an ImageStream
    ...     try:
    ...         return [len(chunk) async for chunk in stream]
    ...     finally:
    ...         stream.close()                                     # always: returns what was not used
    >>> asyncio.run(sizes())
    [8, 8, 4]
    >>> batcher.stop()

A request is cut into chunks (`Chunk`: a run of images of one seed); the stream keeps a few submitted
ahead of its consumer, and each resolves (a future) once the batcher's passes have computed all its
images (service/batcher.py).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from microstructure.images import SIZE

if TYPE_CHECKING:
    from service.batcher import Batcher

log = logging.getLogger(__name__)

Model = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (seeds, indices) -> uint8 (B, 64, 64)
Encode = Callable[[np.ndarray], object]  # uint8 (k, 64, 64) -> what the stream yields instead (e.g. PNGs)


class Chunk:
    """One chunk of a request: a contiguous run of images of one seed, filled pass by pass."""

    __slots__ = ("model", "encode", "seeds", "indices", "out", "taken", "filled", "future", "enqueued")

    def __init__(self, model: Model, seed: int, start: int, n: int, encode: Encode | None = None) -> None:
        self.model = model
        self.encode = encode
        self.seeds = np.full(n, seed, np.int64)
        self.indices = np.arange(start, start + n, dtype=np.int64)
        self.out = np.empty((n, SIZE, SIZE), np.uint8)
        self.taken = 0  # images handed to a forward pass
        self.filled = 0  # images computed
        self.future: concurrent.futures.Future = concurrent.futures.Future()
        self.enqueued = time.monotonic()

    @property
    def waiting(self) -> int:
        return len(self.seeds) - self.taken

    def finish(self) -> None:
        """Resolve the chunk once its images are all computed: its images, or their encoding made here."""
        try:
            result = self.out if self.encode is None else self.encode(self.out)
        except Exception as error:
            log.exception("encoding failed (%s)", self.encode)
            with contextlib.suppress(concurrent.futures.InvalidStateError):
                self.future.set_exception(error)
            return
        with contextlib.suppress(concurrent.futures.InvalidStateError):  # already failed by another pass
            self.future.set_result(result)


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

    async def __anext__(self) -> Any:  # the next chunk: uint8 images, or what `encode` made of them
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
            chunk = Chunk(self._model, self._seed, self._next_start, count, self._encode)
            self._batcher._submit(chunk)
            self._pending.append(chunk.future)
            self._next_start += count
            self._left -= count

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for future in self._pending:
            future.cancel()  # a chunk already in a pass finishes; one still queued is dropped by the worker
        self._pending.clear()
        if self._left:
            self._batcher._release(self._left)
            self._left = 0

    def __del__(self) -> None:
        # A safety net: a streamed response whose body never started (client gone before the first
        # byte) never runs the route's finally, and its reservation must still be returned.
        self.close()
