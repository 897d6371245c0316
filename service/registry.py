"""The loaded models: the `Registry` scans a models_store and holds a `Generator` per (name, version).

    >>> import numpy as np
    >>> from pathlib import Path
    >>> from service.registry import Registry
    >>> registry = Registry(Path("models_store"), precision="auto", block=16, default_model="voronoi64")
    >>> report = registry.rescan()                 # loads and warms up every new version, skips broken ones
    >>> generator = registry.get(None, None)       # the default model, latest version
    >>> generator(np.full(16, 7), np.arange(16)).shape
    (16, 64, 64)

The store has TF Serving's layout, `<name>/<version>/` with an integer version; anything else (such as
an export's `.tmp-export-*` directory) is ignored. Each version is loaded by service/generator.py; a
broken one is recorded as a `Failure` and retried only once its files change.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from service.errors import ModelNotFound, NotReady
from service.files import write_atomic
from service.generator import Generator, Precision, configure_tensorflow
from service.metrics import Metrics
from service.redact import public_text

log = logging.getLogger(__name__)


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
