"""One zip member, decompressed in bounded steps into a seekable file, never beyond what it declares.

    >>> import zipfile
    >>> from training.zipmember import open_member
    >>> member = zipfile.ZipFile("data.zip").infolist()[0]                 # doctest: +SKIP
    >>> with open_member(Path("data.zip"), member, "data.zip:a.h5") as f:  # doctest: +SKIP
    ...     f.read(8)

zipfile's own reader inflates a bzip2 member's compressed block in one call, however large its output
(a 1.6 kB member of zeros becomes gigabytes at once), and trusts the sizes the headers declare. This
one asks every decompressor for at most COPY_BYTES at a time, stops with an error as soon as the
output passes the declared size, checks the CRC, and keeps at most SPOOL_BYTES in memory.
"""

from __future__ import annotations

import bz2
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from training.errors import DataError

COPY_BYTES = 1024**2  # most decompressed bytes asked for at once
READ_BYTES = 64 * 1024  # compressed bytes read at once
SPOOL_BYTES = 32 * 1024**2  # a member larger than this goes to a temporary file


class _Inflater(Protocol):
    """What zlib's and bz2's decompressors share: output in steps of at most max_length bytes."""

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


def open_member(path: Path, member: zipfile.ZipInfo, label: str) -> BinaryIO:
    """The member's bytes in a seekable file: memory up to SPOOL_BYTES, a temporary file beyond."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    try:
        with open(path, "rb") as handle:
            for piece in _member_pieces(handle, member):
                spool.write(piece)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError) as error:
        spool.close()
        raise DataError(f"{label}: corrupt or truncated zip entry ({error})") from None
    spool.seek(0)
    return spool  # type: ignore[return-value]


def _member_pieces(handle: BinaryIO, member: zipfile.ZipInfo) -> Iterator[bytes]:
    """Decompress one member, at most COPY_BYTES at a time, never more than it declares; CRC checked."""
    handle.seek(member.header_offset)
    header = handle.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile("bad local file header")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    handle.seek(member.header_offset + 30 + name_length + extra_length)
    left_in, left_out, crc = member.compress_size, member.file_size, 0
    inflate: _Inflater | None
    if member.compress_type == zipfile.ZIP_STORED:
        inflate = None
    elif member.compress_type == zipfile.ZIP_DEFLATED:
        inflate = zlib.decompressobj(-15)
    else:
        inflate = bz2.BZ2Decompressor()
    while left_out > 0:
        if inflate is None:
            piece = handle.read(min(COPY_BYTES, left_in, left_out))
            left_in -= len(piece)
            starved = not piece
        elif isinstance(inflate, bz2.BZ2Decompressor):
            data = b""
            if inflate.needs_input and left_in > 0:
                data = handle.read(min(READ_BYTES, left_in))
                left_in -= len(data)
            starved = inflate.eof or (inflate.needs_input and not data)
            piece = b"" if starved else inflate.decompress(data, max_length=COPY_BYTES)
        else:
            data = inflate.unconsumed_tail
            if not data and left_in > 0:
                data = handle.read(min(READ_BYTES, left_in))
                left_in -= len(data)
            piece = inflate.decompress(data, COPY_BYTES)
            starved = not inflate.unconsumed_tail and left_in <= 0
        if starved and not piece:
            raise zipfile.BadZipFile(f"stream ends {left_out} bytes short of its declared size")
        if len(piece) > left_out:
            raise zipfile.BadZipFile("stream is longer than its declared size")
        left_out -= len(piece)
        crc = zlib.crc32(piece, crc)
        if piece:
            yield piece
    if crc != member.CRC:
        raise zipfile.BadZipFile("CRC check failed")
