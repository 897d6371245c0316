"""TensorFlow set-up for a run: CPU threads, GPU memory growth, precision policy, determinism, strategy."""

from __future__ import annotations

import os

from training.config import TrainConfig


def setup_tensorflow(cfg: TrainConfig):
    import keras
    import tensorflow as tf

    threads = cfg.threads or int(os.environ.get("MICROGAN_TRAIN_THREADS", "0") or 0)
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)  # share the card with the service
    precision = cfg.precision if cfg.precision != "auto" else ("mixed_float16" if gpus else "float32")
    keras.mixed_precision.set_dtype_policy(precision)
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    if os.environ.get("TF_CONFIG"):
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
    else:
        strategy = tf.distribute.get_strategy()
    return strategy, precision
