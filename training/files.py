"""Writing files so that readers never see half of one: a temporary sibling, then a rename.

    with atomic_path(run_dir / "losses.png") as tmp:   # write anything to tmp; renamed over the target
        figure.savefig(tmp, format="png")              # on success, removed on failure
    write_atomic(run_dir / "status.json", text)        # bytes or text, flushed to disk first

The temporary name is hidden (leading dot) and unique, so concurrent writers of one target never
share it; os.replace is atomic on POSIX when both names are in one directory.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
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
