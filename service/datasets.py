"""Uploaded datasets: stored as `<data_dir>/datasets/<id>/data.{zip,h5}` under an id the server chooses.

    from pathlib import Path
    from service.datasets import DatasetStore
    store = DatasetStore(Path("data"))
    upload = store.new_upload()                        # a private directory for one upload
    _ = (upload / "upload").write_bytes(Path("micrographs.zip").read_bytes())
    info = store.commit(upload, "micrographs.zip")     # DatasetRejected (nothing kept) on bad input
    info["count"], info["shape"], store.path(info["id"])

Uploads are validated by the training side's own rules, run as `python -m training inspect` (the
service never imports the training code) with the operator's limits on uncompressed bytes and image
count; it reads in bounded pieces, so a hostile upload costs bounded memory. A rejected upload
leaves nothing behind. The client's file
name is metadata: it never becomes part of a path.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

from service.errors import DatasetNotFound, DatasetRejected
from service.training_cli import child_env, command, error_reason

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or an empty archive
H5_MAGIC = b"\x89HDF\r\n\x1a\n"
SUFFIXES = {".zip": "zip", ".h5": "h5", ".hdf5": "h5", ".hdf": "h5"}
INSPECT_TIMEOUT_S = 900
_ID = re.compile(r"[0-9a-f]{12}")
log = logging.getLogger(__name__)


def display_name(name: str | None) -> str:
    """A client-supplied file name made safe to show (it is never used as a path)."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in (name or ""))[:200]
    return cleaned or "upload"


class DatasetStore:
    def __init__(self, data_dir: Path, max_bytes: int = 4 * 1024**3, max_images: int = 200_000) -> None:
        self.root = data_dir.resolve() / "datasets"
        self.limits = ["--max-bytes", str(max_bytes), "--max-images", str(max_images)]  # passed to inspect

    def start(self) -> None:
        """Create the store; drop uploads a previous process left half-done."""
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(".*"):
            shutil.rmtree(stale, ignore_errors=True)

    def new_upload(self) -> Path:
        """A fresh private directory for one upload; the caller writes the bytes to `<it>/upload`."""
        path = self.root / f".incoming-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True)
        return path

    def discard(self, upload: Path) -> None:
        shutil.rmtree(upload, ignore_errors=True)

    def commit(self, upload: Path, client_name: str | None) -> dict:
        """Validate `<upload>/upload` and keep it under a new id; DatasetRejected (and nothing kept) if bad."""
        name = display_name(client_name)
        try:
            kind = self._kind(upload / "upload", name)
            data = upload / f"data.{kind}"
            os.rename(upload / "upload", data)
            summary = self._inspect(data, name)
            dataset_id = upload.name.removeprefix(".incoming-")
            info = {
                "id": dataset_id,
                "name": name,
                "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "format": kind,
                "size": data.stat().st_size,
                **{k: summary[k] for k in ("count", "shape", "dtype", "range", "mapping", "files", "fingerprint")},
            }
            (upload / "meta.json").write_text(json.dumps(info, indent=2))
            os.rename(upload, self.root / dataset_id)
        except BaseException:
            self.discard(upload)
            raise
        return info

    def newest_first(self) -> list[dict]:
        """Every stored dataset, newest first."""
        found = []
        for meta in self.root.glob("*/meta.json"):
            if meta.parent.name.startswith("."):
                continue  # an upload being validated, or a dataset being deleted
            try:
                found.append(json.loads(meta.read_text()))
            except (OSError, ValueError):
                continue  # being deleted
        return sorted(found, key=lambda info: info["created"], reverse=True)

    def get(self, dataset_id: str) -> dict:
        try:
            return json.loads((self._dir(dataset_id) / "meta.json").read_text())
        except (OSError, ValueError):
            raise DatasetNotFound(f"no dataset {dataset_id!r}") from None

    def path(self, dataset_id: str) -> Path:
        """The stored data file, the path a training job reads."""
        return self._dir(dataset_id) / f"data.{self.get(dataset_id)['format']}"

    def preview(self, dataset_id: str) -> Path:
        self.get(dataset_id)
        return self._dir(dataset_id) / "preview.png"

    def delete(self, dataset_id: str) -> None:
        self.get(dataset_id)
        doomed = self.root / f".deleting-{dataset_id}"
        os.rename(self._dir(dataset_id), doomed)  # gone from listings at once, removed below
        shutil.rmtree(doomed, ignore_errors=True)

    def _dir(self, dataset_id: str) -> Path:
        if not _ID.fullmatch(dataset_id):
            raise DatasetNotFound(f"no dataset {dataset_id!r}")
        return self.root / dataset_id

    def _kind(self, path: Path, name: str) -> str:
        """zip or h5, by content first; the client's suffix only decides which reader reports the damage."""
        with open(path, "rb") as handle:
            head = handle.read(8)
        if head.startswith(ZIP_MAGIC):
            return "zip"
        if head == H5_MAGIC:
            return "h5"
        suffix = os.path.splitext(name)[1].lower()
        if suffix in SUFFIXES:
            return SUFFIXES[suffix]
        raise DatasetRejected(f"{name}: neither a zip nor an H5 file")

    def _inspect(self, data: Path, name: str) -> dict:
        """`python -m training inspect`: exit 2 and one `error:` line on bad input."""
        inspect = command("inspect", data.name, "--json", "--preview", "preview.png", *self.limits)
        try:
            result = subprocess.run(
                inspect, capture_output=True, text=True, cwd=data.parent, env=child_env(), timeout=INSPECT_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            raise DatasetRejected(f"{name}: validation took longer than {INSPECT_TIMEOUT_S} s") from None
        if result.returncode == 2:
            reason = error_reason(result.stderr.splitlines()) or "?"
            # The stored file's name means nothing to the client: speak of the name it uploaded.
            raise DatasetRejected(name + reason.removeprefix(data.name) if reason.startswith(data.name) else reason)
        if result.returncode != 0:
            # A crash (or a kill) while reading the upload: the upload is not usable, the details are ours.
            log.error("inspect of %s exited %s: %s", name, result.returncode, result.stderr[-2000:])
            raise DatasetRejected(f"{name}: could not be read (validation failed; details in the server log)")
        return json.loads(result.stdout.strip().splitlines()[-1])
