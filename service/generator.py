"""One loaded model version: a `Generator` whose call returns uint8 images and knows nothing of HTTP.

    >>> import numpy as np
    >>> from pathlib import Path
    >>> from service.generator import Generator, configure_tensorflow
    >>> variant = configure_tensorflow("auto")       # "float16" on a GPU, else "float32"
    >>> generator = Generator(Path("models_store/voronoi64/3"), variant, block=16)   # loads, warms up
    >>> generator(np.full(16, 7), np.arange(16)).shape
    (16, 64, 64)

A version is a SavedModel directory of the store (`<name>/<version>/`, see service/registry.py) with its
model card, model.json; only the SavedModel is loaded: the service never imports the training code.
TensorFlow is imported on first load, not when this module is imported.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Literal

import numpy as np

from microstructure.images import SIZE

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
