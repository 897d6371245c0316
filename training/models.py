"""Generator and critic factories: the original notebook's arrangement at configurable widths.

    >>> from training.config import resolve
    >>> from training.models import build_generator, build_critic
    >>> cfg = resolve("tiny")
    >>> build_generator(cfg).output_shape, build_critic(cfg).output_shape
    ((None, 64, 64, 1), (None, 1))

No normalisation layers anywhere (batch norm breaks the per-sample gradient penalty and was left
out of the original's generator on purpose). Output layers compute in float32 under mixed precision.
"""

from __future__ import annotations

import keras
from keras import layers

from training.config import TrainConfig

IMAGE_SIZE = 64


def _init(seed: int, offset: int) -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(0.0, 0.02, seed=seed * 1000 + offset)


def build_generator(cfg: TrainConfig) -> keras.Model:
    """z -> Dense(4*4*g_base) -> [Up -> (Conv3x3 -> LeakyReLU) x g_convs] x3 -> Up
    [-> Conv3x3(g_top) -> LeakyReLU] -> Conv3x3(1) -> tanh."""
    z = keras.Input((cfg.z_noise_dim,), name="z")
    x = layers.Dense(4 * 4 * cfg.g_base, kernel_initializer=_init(cfg.seed, 0), name="project")(z)
    x = layers.Reshape((4, 4, cfg.g_base))(x)
    for i, width in enumerate(cfg.g_filters, start=1):
        x = layers.UpSampling2D(name=f"up{i}")(x)
        x = layers.Conv2D(width, 3, padding="same", kernel_initializer=_init(cfg.seed, i), name=f"conv{i}")(x)
        x = layers.LeakyReLU(0.2)(x)
        for j in range(1, cfg.g_convs):
            init = _init(cfg.seed, 30 + 10 * i + j)
            x = layers.Conv2D(width, 3, padding="same", kernel_initializer=init, name=f"conv{i}_{j + 1}")(x)
            x = layers.LeakyReLU(0.2)(x)
    x = layers.UpSampling2D(name="up4")(x)
    if cfg.g_top:
        x = layers.Conv2D(cfg.g_top, 3, padding="same", kernel_initializer=_init(cfg.seed, 5), name="conv_top")(x)
        x = layers.LeakyReLU(0.2)(x)
    x = layers.Conv2D(1, 3, padding="same", kernel_initializer=_init(cfg.seed, 4), name="conv_out")(x)
    images = layers.Activation("tanh", dtype="float32", name="images")(x)
    return keras.Model(z, images, name="generator")


def build_critic(cfg: TrainConfig) -> keras.Model:
    """[Conv stride 2 -> LeakyReLU] x4 -> Flatten -> Dense(1), linear float32 output."""
    images = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="images")
    x = images
    for i, width in enumerate(cfg.d_filters, start=1):
        x = layers.Conv2D(
            width, cfg.d_kernel, strides=2, padding="same", kernel_initializer=_init(cfg.seed, 10 + i), name=f"conv{i}"
        )(x)
        x = layers.LeakyReLU(0.2)(x)
    x = layers.Flatten()(x)
    score = layers.Dense(1, kernel_initializer=_init(cfg.seed, 20), dtype="float32", name="score")(x)
    return keras.Model(images, score, name="critic")
