"""Writing files so that readers never see half of one: a temporary sibling, then a rename.

    >>> import tempfile
    >>> from pathlib import Path
    >>> from service.files import atomic_path, write_atomic
    >>> folder = Path(tempfile.mkdtemp())
    >>> write_atomic(folder / "manifest.json", '{"shards": []}')   # bytes or text, flushed to disk first
    >>> with atomic_path(folder / "default.json") as tmp:          # write anything to tmp; renamed over
    ...     _ = tmp.write_text('{"model": "voronoi64"}')            # the target on success, removed on failure
    >>> sorted(path.name for path in folder.iterdir())
    ['default.json', 'manifest.json']

The temporary name is hidden (leading dot) and fixed per target, `.<name>.tmp`: a writer killed midway
leaves it behind, and the next write of that target takes it over, so a re-run (service.bulk after a
kill) leaves a directory holding exactly its files. Writers of one target therefore take turns (the
shards' manifest is written under a lock; each shard and job file has one writer). os.replace is atomic
on POSIX when both names are in one directory. The training side has the same API (training/files.py,
with unique temporary names); the service never imports the training code, so it keeps its own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write bytes or text to `path` atomically, fsynced before the rename."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)
        handle.flush()
        os.fsync(handle.fileno())
