"""Hostile dataset files, built inside the tests (nothing is committed): decompression bombs and liars.

    >>> from tests.hostile import bzip2_zip, h5_declaring
    >>> bzip2_zip(Path("bomb.zip"), cache)            # ~1.7 kB, one bzip2 member inflating to 2 GiB
    >>> h5_declaring(Path("bomb.h5"), (60000, 64, 64))  # ~1.4 kB, gzip chunks never written

Compressing 2 GiB of zeros costs about 13 s of CPU, so the compressed stream is kept in pytest's cache
(`.pytest_cache`) and reused by later sessions.
"""

from __future__ import annotations

import base64
import bz2
import struct
import zipfile
import zlib
from pathlib import Path

import h5py
import numpy as np

BOMB_BYTES = 2 * 1024**3
_BLOCK = 64 * 1024**2
_CACHE_KEY = "microgan/bzip2-zeros-2GiB"


def _bzip2_zeros(cache) -> tuple[bytes, int]:
    """A bzip2 stream of BOMB_BYTES zeros, and the CRC-32 of those zeros."""
    stored = cache.get(_CACHE_KEY, None) if cache is not None else None
    if stored:
        return base64.b64decode(stored["stream"]), stored["crc"]
    compressor, crc, block = bz2.BZ2Compressor(9), 0, bytes(_BLOCK)
    parts = []
    for _ in range(BOMB_BYTES // _BLOCK):
        parts.append(compressor.compress(block))
        crc = zlib.crc32(block, crc)
    stream = b"".join(parts) + compressor.flush()
    if cache is not None:
        cache.set(_CACHE_KEY, {"stream": base64.b64encode(stream).decode(), "crc": crc})
    return stream, crc


def bzip2_zip(path: Path, cache, honest: bool = True) -> Path:
    """A zip of one bzip2 member `imgs/a.h5` inflating to 2 GiB of zeros.

    honest: its headers declare the 2 GiB (a ratio the loader refuses); otherwise they claim the
    member is no larger than its compressed bytes, so only the decompression itself can tell.
    """
    stream, crc = _bzip2_zeros(cache)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("imgs/a.h5", stream)
    data = bytearray(path.read_bytes())
    # Rewrite the method (8 = stored -> 12 = bzip2), CRC and sizes in the local and the central header.
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<H", data, 8, zipfile.ZIP_BZIP2)
    struct.pack_into("<H", data, central + 10, zipfile.ZIP_BZIP2)
    if honest:
        struct.pack_into("<II", data, 14, crc, len(stream))
        struct.pack_into("<I", data, 22, BOMB_BYTES)
        struct.pack_into("<II", data, central + 16, crc, len(stream))
        struct.pack_into("<I", data, central + 24, BOMB_BYTES)
    path.write_bytes(bytes(data))
    return path


def h5_declaring(path: Path, shape: tuple[int, ...], compression: str | None = "gzip") -> Path:
    """An H5 file whose one dataset declares `shape` uint8 in chunks that were never written."""
    with h5py.File(path, "w") as handle:
        chunks = (min(100, shape[0]), *shape[1:])
        handle.create_dataset("images", shape=shape, dtype=np.uint8, chunks=chunks, compression=compression)
    return path


_PEAK = """import json, resource, subprocess, sys
result = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"code": result.returncode, "stdout": result.stdout, "stderr": result.stderr, "peak": peak}))
"""


def run_measured(command: list[str], env: dict, cwd: Path, timeout: float = 300) -> dict:
    """Run `command` from a fresh interpreter: its exit code, output and peak resident memory in bytes."""
    import json
    import subprocess
    import sys

    command = [sys.executable, "-c", _PEAK, *map(str, command)]
    wrapper = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    return json.loads(wrapper.stdout)
