"""Layers of the grain-count condition (config `condition=grains`).

Generator: `GrainPrior` turns the requested count into the count the image is drawn with
    counts = GrainPrior(16, name="grain_prior")([z, grains])   # grains int32 [B]; 0 = draw one
a request of 0 draws the count from the training histogram (kept in the layer as a non-trainable
weight, so checkpoints and exports carry it) through z's first component, so an unconditional
sample is still a function of the latent alone.
Critic: `Projection` adds the projection-discriminator term (Miyato & Koyama 2018) to the score
    score = Dense(1)(features) + Projection(17)([features, grains])   # <embed(count), features>
so the critic judges (image, count) pairs; the gradient penalty stays per sample.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers


class GrainPrior(layers.Layer):
    """([z [B, Z], grains int [B]]) -> counts int32 [B] in 1..most: the request where it is positive,
    else drawn from the training histogram by the inverse CDF at Phi(z_0)."""

    def __init__(self, most: int, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.most = most

    def build(self, input_shape):
        # P(count <= c), c = 0..most; uniform over 1..most until set from the data (set_histogram).
        uniform = np.r_[0.0, np.arange(1, self.most + 1) / self.most].astype(np.float32)
        self.cdf = self.add_weight(
            name="cdf", shape=(self.most + 1,), initializer=keras.initializers.Constant(uniform), trainable=False
        )

    def set_cdf(self, cdf: np.ndarray) -> None:
        if cdf.shape != (self.most + 1,):
            raise ValueError(f"expected a CDF over counts 0..{self.most}, got shape {cdf.shape}")
        self.cdf.assign(cdf)

    def call(self, inputs):
        z, grains = inputs
        uniform = 0.5 * (1.0 + tf.math.erf(tf.cast(z[:, 0], tf.float32) / math.sqrt(2.0)))
        drawn = tf.reduce_sum(tf.cast(self.cdf[None, :] < uniform[:, None], tf.int32), axis=1)
        drawn = tf.clip_by_value(drawn, 1, self.most)
        grains = tf.cast(tf.reshape(grains, [-1]), tf.int32)
        return tf.where(grains > 0, tf.minimum(grains, self.most), drawn)

    def get_config(self):
        return {**super().get_config(), "most": self.most}


class Projection(layers.Layer):
    """([features [B, D], grains int [B]]) -> [B, 1]: the inner product of a learnt embedding of the
    count with the critic's features."""

    def __init__(self, classes: int, seed: int = 0, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.classes, self.seed = classes, seed

    def build(self, input_shape):
        features = input_shape[0][-1]
        self.embedding = self.add_weight(
            name="embedding",
            shape=(self.classes, features),
            initializer=keras.initializers.RandomNormal(0.0, 0.02, seed=self.seed),
        )

    def call(self, inputs):
        features, grains = inputs
        grains = tf.clip_by_value(tf.cast(tf.reshape(grains, [-1]), tf.int32), 0, self.classes - 1)
        embedded = tf.gather(self.embedding, grains)
        return tf.reduce_sum(embedded * tf.cast(features, tf.float32), axis=1, keepdims=True)

    def get_config(self):
        return {**super().get_config(), "classes": self.classes, "seed": self.seed}


class CountFeatures(layers.Layer):
    """counts int32 [B] -> (one-hot [B, most + 1], presence [B, most]): site k is present when k < count."""

    def __init__(self, most: int, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.most = most

    def call(self, counts):
        onehot = tf.one_hot(counts, self.most + 1, dtype=tf.float32)
        presence = tf.cast(tf.range(self.most)[None, :] < counts[:, None], tf.float32)
        return onehot, presence

    def get_config(self):
        return {**super().get_config(), "most": self.most}


class NoRequest(layers.Layer):
    """z [B, Z] -> zeros int32 [B]: "draw the count" for every image (see GrainPrior)."""

    def call(self, z):
        return tf.zeros(tf.shape(z)[:1], tf.int32)
