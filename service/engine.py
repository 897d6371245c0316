"""Loaded models: a `Generator` per (name, version) of a models_store, and the `Registry` that scans it.

    >>> import numpy as np
    >>> from pathlib import Path
    >>> from service.engine import Registry
    >>> registry = Registry(Path("models_store"), precision="auto", block=16, default_model="voronoi64")
    >>> report = registry.rescan()                 # loads and warms up every new version, skips broken ones
    >>> generator = registry.get(None, None)       # the default model, latest version
    >>> generator(np.full(16, 7), np.arange(16)).shape
    (16, 64, 64)

The store has TF Serving's layout, `<name>/<version>/` with an integer version; anything else (such as
an export's `.tmp-export-*` directory) is ignored. Only SavedModels are loaded: the service never
imports the training code. TensorFlow is imported on first load, not when this module is imported.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from microstructure.images import SIZE
from service.errors import ModelNotFound, NotReady
from service.files import write_atomic
from service.metrics import Metrics
from service.redact import public_text

log = logging.getLogger(__name__)


Precision = Literal["float32", "float16"]


def configure_tensorflow(precision: str) -> Precision:
    """Turn on GPU memory growth and return the variant to serve: "float16" or "float32".

    float16 (the version's fp16/ SavedModel) only when a GPU is visible and precision is auto or
    mixed_float16; on a CPU float16 is slower and no more exact, so float32 is served.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)  # share the card with a training job
        except RuntimeError:  # already initialised (a second app in the same process)
            pass
    if gpus and precision in ("auto", "mixed_float16"):
        return "float16"
    if precision == "mixed_float16":
        log.warning("precision=mixed_float16 but no GPU is visible: serving float32")
    return "float32"


class Generator:
    """One model version, loaded and warmed up; calling it returns uint8 images and knows nothing of HTTP."""

    def __init__(self, path: Path, variant: Precision, block: int) -> None:
        import tensorflow as tf

        self._tf = tf
        self.path = path
        self.name = path.parent.name
        self.version = int(path.name)
        self.card: dict = json.loads((path / "model.json").read_text())
        self.z_dim = int(self.card["z_dim"])
        self.max_batch = int(self.card.get("max_sample_batch", block))
        if block > self.max_batch:
            raise ValueError(f"max_batch {block} is above this model's max_sample_batch {self.max_batch}")
        use_fp16 = variant == "float16" and (path / "fp16" / "saved_model.pb").exists()
        if variant == "float16" and not use_fp16:
            log.warning("%s has no fp16/ variant: serving float32", path)
        self.precision: Precision = "float16" if use_fp16 else "float32"
        self._loaded = tf.saved_model.load(str(path / "fp16" if use_fp16 else path))
        self._sample = self._loaded.signatures["sample"]
        # Partition heads (laguerre, partition) export the partition they draw; pixel heads do not.
        self.head: str = self.card.get("head", "image")
        self.render_width = int(self.card.get("config", {}).get("render_width", 2))  # boundary px it draws
        self._partition = self._loaded.signatures.get("partition")
        # Models conditioned on grains per image take a count in their `_grains` signatures.
        self.condition: dict | None = self.card.get("condition")
        self._sample_grains = self._loaded.signatures.get("sample_grains")
        self._partition_grains = self._loaded.signatures.get("partition_grains")
        self.views: dict = {}  # service.conditions.GrainsView per count asked for

        # Warm up with the one shape the batcher uses, and check the contract while at it.
        images = self(np.zeros(block, np.int64), np.arange(block, dtype=np.int64))
        if images.shape != (block, SIZE, SIZE) or images.dtype != np.uint8:
            raise ValueError(
                f"sample signature returned {images.dtype} {images.shape}, expected uint8 ({block}, {SIZE}, {SIZE})"
            )

    def __call__(self, seeds: np.ndarray, indices: np.ndarray, grains: int | None = None) -> np.ndarray:
        """uint8 (B, 64, 64): image b is a function of (seeds[b], indices[b]) alone [and of the grain
        count asked for, for a conditional model]."""
        tf = self._tf
        ids = {"seeds": tf.constant(seeds, tf.int64), "indices": tf.constant(indices, tf.int64)}
        if grains is None:
            return self._sample(**ids)["images"].numpy()
        return self._sample_grains(**ids, grains=tf.fill([len(seeds)], tf.constant(grains, tf.int32)))["images"].numpy()

    @property
    def has_partition(self) -> bool:
        return self._partition is not None

    def partition(self, seeds: np.ndarray, indices: np.ndarray, grains: int | None = None) -> dict[str, np.ndarray]:
        """The generator's own partition of each image: labels int32 (B, 64, 64) and, for a Laguerre
        tessellation, sites (B, K, 2) and weights (B, K) in pixel units; computed in blocks of max_batch."""
        if self._partition is None:
            raise ValueError(f"{self.name} v{self.version} ({self.head} head) draws no partition")
        tf = self._tf
        parts: list[dict] = []
        for start in range(0, len(seeds), self.max_batch):
            block = slice(start, start + self.max_batch)
            ids = {"seeds": tf.constant(seeds[block], tf.int64), "indices": tf.constant(indices[block], tf.int64)}
            if grains is None:
                out = self._partition(**ids)
            else:
                out = self._partition_grains(**ids, grains=tf.fill([len(ids["seeds"])], tf.constant(grains, tf.int32)))
            parts.append({key: value.numpy() for key, value in out.items()})
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}

    def __repr__(self) -> str:
        return f"Generator({self.name} v{self.version}, {self.precision})"


@dataclass(frozen=True)
class Failure:
    name: str
    version: int
    reason: str
    stamp: tuple  # the files' state when it failed: retried only once they change


class Registry:
    """All loaded versions of all models in a store; rescans load new versions and skip broken ones."""

    def __init__(
        self,
        root: Path,
        precision: str,
        block: int,
        default_model: str,
        default_explicit: bool = True,
        metrics: Metrics | None = None,
        default_file: Path | None = None,
    ) -> None:
        self.root = root
        self.precision = precision
        self.block = block
        self.default_model = default_model
        self.default_explicit = default_explicit
        self.metrics = metrics
        # The activated default (POST /models/{name}/{version}/activate), kept in default_file so it
        # survives restarts and is followed by replicas sharing the file; it overrides default_model.
        self.default_version: int | None = None
        self.default_file = default_file
        self._default_stamp: tuple | None = None
        self.variant: Precision | None = None  # decided on the first scan (needs TensorFlow)
        self.scanned = False  # the first scan has finished
        self.scan_error: str | None = None  # why the last scan failed as a whole (not one version)
        self._models: dict[str, dict[int, Generator]] = {}
        self._failed: dict[tuple[str, int], Failure] = {}
        self._lock = threading.Lock()  # guards _models/_failed swaps
        self._scan_lock = threading.Lock()  # one scan at a time
        self._read_default_file()

    # Lookups (called from the event loop; cheap).

    def default_name(self) -> str | None:
        """The model served when a request names none, or None when there is none to serve."""
        models = self._models
        if self.default_model in models:
            return self.default_model
        if not self.default_explicit and len(models) == 1:
            return next(iter(models))
        return None

    def default_key(self) -> tuple[str, int] | None:
        """(name, version) served when a request names no model: the activated version, else the latest."""
        name = self.default_name()
        if name is None:
            return None
        versions = self._models.get(name)  # a scan may have swapped the dict since default_name()
        if not versions:
            return None
        if self.default_version is None or name != self.default_model:
            return name, max(versions)
        return (name, self.default_version) if self.default_version in versions else None

    def get(self, name: str | None, version: int | None) -> Generator:
        """The loaded generator for (name, version); None means the default model / its default version."""
        if name is None:
            key = self.default_key()
            if key is None:
                raise NotReady(self.not_ready_reason())
            name, version = key[0], key[1] if version is None else version
        versions = self._models.get(name)
        if not versions:
            known = ", ".join(sorted(self._models)) or "none"
            raise ModelNotFound(f"model {name!r} is not loaded (loaded models: {known})")
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            failure = self._failed.get((name, version))
            why = f": it failed to load ({failure.reason})" if failure else ""
            raise ModelNotFound(
                f"model {name!r} has no loaded version {version}{why} (loaded: {', '.join(map(str, sorted(versions)))})"
            )
        return versions[version]

    def not_ready_reason(self) -> str | None:
        """Why the default model cannot be served, or None when it can."""
        if self.default_key() is not None:
            return None
        if self.default_name() is not None and self.default_version is not None:  # activated, not loaded
            failure = self._failed.get((self.default_model, self.default_version))
            why = f": it failed to load ({failure.reason})" if failure else "" if self.scanned else " yet"
            return f"default model {self.default_model!r} version {self.default_version} is not loaded{why}"
        if self.scan_error is not None:
            return f"scanning {self.root} failed: {self.scan_error}"
        if not self.scanned:
            return f"loading models from {self.root}"
        failures = [f for f in self._failed.values() if f.name == self.default_model]
        if failures:
            return f"default model {self.default_model!r} failed to load: {failures[-1].reason}"
        loaded = ", ".join(sorted(self._models))
        if not loaded:
            return f"no loadable model in {self.root} (default model {self.default_model!r} not found)"
        return (
            f"default model {self.default_model!r} is not in {self.root} (loaded: {loaded}); "
            "set MICROGAN_DEFAULT_MODEL or pass ?model="
        )

    def activate(self, name: str, version: int) -> None:
        """Make a loaded version the default; stored in default_file so that it survives restarts."""
        self.get(name, version)  # ModelNotFound unless loaded
        if self.default_file is not None:
            self.default_file.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.default_file, json.dumps({"model": name, "version": version}))
            stat = self.default_file.stat()
            self._default_stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            self.default_model, self.default_explicit, self.default_version = name, True, version
        log.info("default model is now %s/%s", name, version)

    def unload(self, name: str, version: int) -> None:
        """Forget a version (its directory has been removed)."""
        self._publish(name, version, None)
        with self._lock:
            self._failed.pop((name, version), None)

    def _read_default_file(self) -> None:
        """Adopt the activated default from default_file when it changed (written here or by another replica)."""
        if self.default_file is None:
            return
        try:
            stat = self.default_file.stat()
            if (stat.st_mtime_ns, stat.st_size) == self._default_stamp:
                return
            data = json.loads(self.default_file.read_text())
            name, version = str(data["model"]), int(data["version"])
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.error("ignoring %s: %s", self.default_file, error)
            return
        self._default_stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            self.default_model, self.default_explicit, self.default_version = name, True, version

    def snapshot(self) -> tuple[dict[str, dict[int, Generator]], list[Failure]]:
        with self._lock:
            return self._models, list(self._failed.values())

    # Scanning (blocking: run it in a worker thread).

    def rescan(self) -> dict[str, list]:
        """Load every new version (default model first, newest first), drop vanished ones; a report."""
        with self._scan_lock:
            try:
                report = self._rescan()
            except Exception as error:
                self.scan_error = f"{type(error).__name__}: {error}"
                raise
            self.scan_error = None
            self.scanned = True
            return report

    def _rescan(self) -> dict[str, list]:
        if self.variant is None:
            self.variant = configure_tensorflow(self.precision)
        self._read_default_file()
        on_disk = self._versions_on_disk()
        loaded: list[str] = []

        # Forget versions whose directory is gone.
        removed = [(n, v) for n, versions in self._models.items() for v in versions if (n, v) not in on_disk]
        for name, version in removed:
            self._publish(name, version, None)
            log.info("model %s/%s removed from the store", name, version)
        with self._lock:
            self._failed = {k: f for k, f in self._failed.items() if k in on_disk}

        # Load new versions; each becomes visible (and possibly latest) only once warmed up.
        todo = [k for k in on_disk if k[1] not in self._models.get(k[0], {})]
        pinned = (self.default_model, self.default_version)
        todo.sort(key=lambda k: (k != pinned, k[0] != self.default_model, k[0], -k[1]))
        for name, version in todo:
            stamp = on_disk[(name, version)]
            previous = self._failed.get((name, version))
            if previous is not None and previous.stamp == stamp:
                continue  # unchanged since it failed: don't retry (and re-log) on every scan
            path = self.root / name / str(version)
            try:
                generator = Generator(path, self.variant, self.block)
            except Exception as error:  # a broken version must not stop the others
                log.error("skipping model %s/%s: %s: %s", name, version, type(error).__name__, error)
                # Shown without a key (GET /models, /readyz, 404s): one line, paths relative to the store.
                reason = public_text(f"{type(error).__name__}: {str(error).strip()}", self.root) or ""
                failure = Failure(name, version, reason, stamp)
                with self._lock:
                    self._failed[(name, version)] = failure
                continue
            self._publish(name, version, generator)
            log.info("loaded model %s/%s (%s)", name, version, generator.precision)
            loaded.append(f"{name}/{version}")
        with self._lock:
            failed = list(self._failed.values())
        return {"loaded": loaded, "failed": failed, "removed": [f"{n}/{v}" for n, v in removed]}

    def _versions_on_disk(self) -> dict[tuple[str, int], tuple]:
        if not self.root.is_dir():
            log.log(logging.DEBUG if self.scanned else logging.WARNING, "models directory %s does not exist", self.root)
            return {}
        found: dict[tuple[str, int], tuple] = {}
        for model_dir in self.root.iterdir():
            if not model_dir.is_dir() or model_dir.name.startswith("."):
                continue
            for version_dir in model_dir.iterdir():
                if version_dir.is_dir() and version_dir.name.isdigit():  # skips .tmp-export-* and the like
                    found[(model_dir.name, int(version_dir.name))] = _stamp(version_dir)
        return found

    def _publish(self, name: str, version: int, generator: Generator | None) -> None:
        """Add (or with None remove) one version. Copy-on-write: readers never see a dict mid-change."""
        with self._lock:
            models = {n: dict(v) for n, v in self._models.items()}
            old = models.get(name, {}).pop(version, None)
            if generator is not None:
                models.setdefault(name, {})[version] = generator
                self._failed.pop((name, version), None)
            self._models = {n: v for n, v in models.items() if v}
        if self.metrics is not None:
            if old is not None:
                self.metrics.loaded.remove(old.name, str(old.version), old.precision)
            if generator is not None:
                self.metrics.loaded.labels(generator.name, str(generator.version), generator.precision).set(1)


def _stamp(version_dir: Path) -> tuple:
    """What identifies the state of a version's files cheaply (so a repaired version is retried)."""
    parts: list[tuple[str, int | None, int | None]] = []
    for name in ("", "saved_model.pb", "model.json", "variables/variables.index"):
        try:
            stat = (version_dir / name).stat()
            parts.append((name, stat.st_mtime_ns, stat.st_size))
        except OSError:
            parts.append((name, None, None))
    return tuple(parts)
