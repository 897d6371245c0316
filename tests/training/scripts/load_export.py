"""Load an exported version with TensorFlow alone (no `training` import) and report what it does.

python tests/training/scripts/load_export.py models_store/tiny/1
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path = [p for p in sys.path if p not in ("", os.getcwd())]  # keep the project's packages out of reach
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

version = sys.argv[1]
card = json.load(open(os.path.join(version, "model.json")))
z_dim = card["z_dim"]


def run_sample(model, seeds, indices):
    return model.signatures["sample"](seeds=tf.constant(seeds, tf.int64), indices=tf.constant(indices, tf.int64))[
        "images"
    ].numpy()


def layer_dtypes(model):
    """Dtypes of the convolutions and matrix products of the generator (what the fp16 variant speeds up)."""
    graph = model.signatures["serving_default"].graph.as_graph_def()
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    return sorted({tf.dtypes.as_dtype(n.attr["T"].type).name for n in nodes if n.op in ("Conv2D", "MatMul")})


def rule(labels):
    """The dataset's boundary rule at width 2 (4-neighbours; off-image neighbours compare with themselves)."""
    padded = np.pad(labels, ((0, 0), (1, 1), (1, 1)), mode="edge")
    centre = padded[:, 1:-1, 1:-1]
    differs = (
        (padded[:, :-2, 1:-1] != centre)
        | (padded[:, 2:, 1:-1] != centre)
        | (padded[:, 1:-1, :-2] != centre)
        | (padded[:, 1:-1, 2:] != centre)
    )
    return np.where(differs, 255, 0).astype(np.uint8)


full = tf.saved_model.load(version)
half = tf.saved_model.load(os.path.join(version, "fp16"))
z = tf.random.stateless_normal([32, z_dim], seed=[1, 2])
dense_full = full.signatures["serving_default"](z=z)["images"].numpy()
dense_half = half.signatures["serving_default"](z=z)["images"].numpy()

first = run_sample(full, [7] * 100, list(range(100)))
again = run_sample(full, [7] * 100, list(range(100)))
prefix = run_sample(full, [7] * 32, list(range(32)))
paged = run_sample(full, [7] * 10, list(range(40, 50)))
mixed = run_sample(full, [7, 3, 7, 3], [5, 5, 6, 6])
alone3 = run_sample(full, [3, 3], [5, 6])
sample_half = run_sample(half, [7] * 8, list(range(8)))
# The latent of (seed, index) is stateless_normal(seed=[seed, index]): recompute it and compare.
latents = tf.stack([tf.random.stateless_normal([z_dim], seed=tf.constant([7, i], tf.int64)) for i in range(100)])
dense_latents = full.signatures["serving_default"](z=latents)["images"].numpy()[..., 0]
as_uint8 = np.clip(np.rint((dense_latents + 1.0) * 127.5), 0, 255).astype(np.uint8)

rejected = {}
for name, (seeds, indices) in {
    "negative_seed": ([-1], [0]),
    "negative_index": ([1], [-5]),
    "too_many": ([0] * (card["max_sample_batch"] + 1), list(range(card["max_sample_batch"] + 1))),
}.items():
    try:
        run_sample(full, seeds, indices)
        rejected[name] = False
    except tf.errors.InvalidArgumentError:
        rejected[name] = True


partition = {}
if "partition" in full.signatures:
    out = full.signatures["partition"](seeds=tf.constant([7] * 100, tf.int64), indices=tf.range(100, dtype=tf.int64))
    labels = out["labels"].numpy()
    partition = {
        "keys": sorted(out),
        "labels_dtype": str(labels.dtype),
        "labels_shape": list(labels.shape),
        "sites_shape": list(out["sites"].shape) if "sites" in out else None,
        "sample_is_rule_of_labels": bool(np.array_equal(rule(labels), first)),
    }


def off_by(a, b):
    diff = np.abs(a.astype(int) - b.astype(int))
    return {"max": int(diff.max()), "share": float((diff > 0).mean())}


print(
    json.dumps(
        {
            "training_imported": "training" in sys.modules,
            "dense_shape": list(dense_full.shape),
            "dense_range": [float(dense_full.min()), float(dense_full.max())],
            "dense_half_mad": float(np.mean(np.abs(dense_full - dense_half))),
            "layer_dtypes": {"float32": layer_dtypes(full), "fp16": layer_dtypes(half)},
            "signatures": sorted(full.signatures),
            "partition": partition,
            "sample_shape": list(first.shape),
            "sample_dtype": str(first.dtype),
            "sample_half_dtype": str(sample_half.dtype),
            "repeat_identical": bool(np.array_equal(first, again)),
            "prefix": off_by(first[:32], prefix),
            "paging": off_by(first[40:50], paged),
            "mixed_seeds": off_by(mixed[[1, 3]], alone3) | {"seed7": off_by(mixed[[0, 2]], first[5:7])["max"]},
            "distinct": int(len({img.tobytes() for img in dense_latents})),
            "latents_match": off_by(as_uint8, first),
            "dense_std_across_images": float(dense_full.std(axis=0).mean()),
            "rejected": rejected,
        }
    )
)
