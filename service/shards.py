"""A sharded image set on disk: shard files, their checksums and the manifest that lists them.

    >>> from pathlib import Path
    >>> from service.shards import SetSpec
    >>> spec = SetSpec(model="voronoi64", version=2, precision="float32", seed=7, count=25, shard_size=10,
    ...                format="h5", z_dim=64)
    >>> spec.shards, spec.span(2), spec.file_name(2)
    (3, (20, 5), 'shard-00002.h5')

DIR/shard-00000.h5 ... hold images [i * shard_size, (i + 1) * shard_size) of the set; beside each,
`shard-00000.h5.sha256` (the `sha256sum` format: `cd DIR && sha256sum -c *.sha256` checks them all).
DIR/manifest.json lists the set (model, version, precision, seed, count, shard size, format) and every
finished shard with its checksum. Every file is written to a temporary name and renamed (service.files),
so a kill leaves either the old file or the new one; a shard counts as done only once its checksum file
names its exact bytes. Several processes (the pods of a Kubernetes Indexed Job) may fill one DIR at once:
each writes only its own shards (so a shard's temporary name is its own), and the manifest is rebuilt
from the checksum files after each shard, under a lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from service.files import write_atomic

MANIFEST = "manifest.json"
LOCK = ".manifest.lock"  # held while the manifest is rewritten
_CHECKSUM = re.compile(r"^([0-9a-f]{64})  (shard-\d{5}\.\w+)\n$")


class SetMismatch(ValueError):
    """DIR already holds (part of) another set: reusing it would mix two sets."""


@dataclass(frozen=True)
class SetSpec:
    """What identifies a set: the same spec gives the same bytes in every shard."""

    model: str
    version: int
    precision: str
    seed: int
    count: int
    shard_size: int
    format: str
    z_dim: int
    labels: bool = False  # h5: grain labels per image, as POST /generate?labels=true
    sites: bool = False  # h5, laguerre models: the sites and weights each image is drawn from
    grains: int | None = None  # models conditioned on grains: grains per image asked for (None: not asked)

    @property
    def shards(self) -> int:
        return -(-self.count // self.shard_size)

    def span(self, index: int) -> tuple[int, int]:
        """(first image, number of images) of shard `index`."""
        first = index * self.shard_size
        return first, min(self.shard_size, self.count - first)

    def file_name(self, index: int) -> str:
        return f"shard-{index:05d}.{self.format}"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def recorded(folder: Path, name: str) -> str | None:
    """The checksum recorded for shard file `name`, or None when there is none (or it is unreadable)."""
    try:
        match = _CHECKSUM.match((folder / f"{name}.sha256").read_text())
    except (OSError, UnicodeDecodeError):
        return None
    return match.group(1) if match and match.group(2) == name else None


def verified(folder: Path, name: str) -> bool:
    """True when shard `name` exists and its bytes match its recorded checksum."""
    expected = recorded(folder, name)
    return expected is not None and (folder / name).is_file() and sha256(folder / name) == expected


def save_shard(folder: Path, name: str, data: bytes) -> str:
    """Write a shard, then its checksum file (the shard counts as done from then on); its sha256."""
    digest = hashlib.sha256(data).hexdigest()
    (folder / f"{name}.sha256").unlink(missing_ok=True)  # a redone shard is not done until it is rewritten
    write_atomic(folder / name, data)
    write_atomic(folder / f"{name}.sha256", f"{digest}  {name}\n")
    return digest


def check_manifest(folder: Path, spec: SetSpec) -> None:
    """Raise SetMismatch when DIR's manifest describes another set (different model, seed, count...)."""
    path = folder / MANIFEST
    if not path.exists():
        return
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SetMismatch(f"{path} is unreadable ({error}): choose another --out") from None
    if not isinstance(found, dict):
        raise SetMismatch(f"{path} is not a manifest of an image set: choose another --out")
    wanted = asdict(spec)
    differences = [
        f"{key} {found.get(key)!r} (asked: {wanted[key]!r})" for key in wanted if found.get(key) != wanted[key]
    ]
    if differences:
        raise SetMismatch(f"{folder} holds another set: {', '.join(differences)}; choose another --out")


def write_manifest(folder: Path, spec: SetSpec) -> dict:
    """Rebuild DIR/manifest.json from the checksum files, one writer at a time.

    Processes sharing DIR take turns under an exclusive lock (released by the kernel if a holder dies),
    so each manifest is written whole and the last one lists every shard finished before it.
    """
    with open(folder / LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = _manifest(folder, spec)
        write_atomic(folder / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest


def _manifest(folder: Path, spec: SetSpec) -> dict:
    shards = []
    for index in range(spec.shards):
        name = spec.file_name(index)
        digest = recorded(folder, name)
        if digest is not None:
            first, n = spec.span(index)
            shards.append({"index": index, "file": name, "first": first, "n": n, "sha256": digest})
    return {**asdict(spec), "shards_total": spec.shards, "complete": len(shards) == spec.shards, "shards": shards}
