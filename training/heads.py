"""Layers of the generator heads that draw a partition instead of pixels.

    sites, weights = LaguerreSites(16, name="sites")(Dense(3 * 16, dtype="float32")(hidden))
    logits = LaguerreLogits(64, name="logits")([sites, weights])     # [B, 64, 64, 16]
    images = RenderBoundaries(width=2, name="images")(logits)         # [B, 64, 64, 1] in {-1, 1}

A Laguerre (power-diagram) tessellation gives pixel x to the site k with the largest
2 s_k.x - |s_k|^2 + w_k, that is the smallest |x - s_k|^2 - w_k: straight boundaries and convex
grains by construction. Coordinates are in units of the image side (pixel centres at (i + 0.5) / 64),
(x, y) with y pointing down; sites may lie in a box SITE_BOX times the image, so a site can leave
the view and take its grain with it, and a site whose weight is low enough owns no pixel at all:
the number of grains is learnt. All these layers compute in float32, also under mixed precision.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers

from training.render import render_partition

SITE_BOX = 1.3  # sites lie in a centred box this many times the image side
# Weights are the raw outputs times this, so that at the start (raw outputs of order 1) they are of
# the order of the squared distance between neighbouring sites and most sites own a grain.
WEIGHT_SCALE = 0.05
INITIAL_SHARPNESS = 64.0  # beta at the start: about one logit per pixel between neighbouring sites
# g_count=uniform: the count level c (in sites) is drawn uniform over a learnt range, starting here
# (fractions of g_sites); site k is present in full when k + 1 <= c, fades out as c falls from k + 1
# to k (its weight lowered by up to FADE, about what shrinks a grain to nothing), and is removed
# (weight lowered by ABSENT, more than any squared distance in the box) below that.
INITIAL_COUNT_RANGE = (0.25, 0.75)
FADE = 0.15
ABSENT = 4.0


class LaguerreSites(layers.Layer):
    """[B, 3K] raw outputs [, presence [B, K]] -> (sites [B, K, 2] in a centred box `box` times the
    image, weights [B, K]), unit coordinates; a site's weight is lowered as its presence falls (CountGate
    or a grain-count condition), so absent sites own no pixel."""

    def __init__(self, count: int, box: float = SITE_BOX, equal_weights: bool = False, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.count, self.box, self.equal_weights = count, box, equal_weights

    def call(self, raw, presence=None):
        raw = tf.reshape(tf.cast(raw, tf.float32), [-1, self.count, 3])
        sites = 0.5 + 0.5 * self.box * tf.tanh(raw[..., :2])
        weights = (0.0 if self.equal_weights else WEIGHT_SCALE) * raw[..., 2]
        if presence is not None:
            weights -= FADE * (1.0 - presence) + ABSENT * tf.cast(presence <= 0.0, tf.float32)
        return sites, weights

    def get_config(self):
        return {**super().get_config(), "count": self.count, "box": self.box, "equal_weights": self.equal_weights}


class CountGate(layers.Layer):
    """z [B, Z] -> (presence [B, K] in [0, 1], level [B, 1]): how many sites an image has, from z's first
    component alone, uniform over a learnt range of counts.

    With u = Phi(z_0) uniform on (0, 1), the count level is c = K (lo + (hi - lo) u) and site k's
    presence is clip(c - k, 0, 1). Unlike a count the MLP decides, it cannot collapse onto one value
    unless lo and hi meet; and the grain that fades as c falls keeps c differentiable. The level c / K
    is also given to the MLP, so it can place exactly the sites that are present.
    """

    def __init__(self, count: int, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.count = count

    def build(self, input_shape):
        lo, hi = INITIAL_COUNT_RANGE
        self.lo_logit = self.add_weight(name="lo_logit", shape=(), initializer=keras.initializers.Constant(_logit(lo)))
        self.hi_logit = self.add_weight(name="hi_logit", shape=(), initializer=keras.initializers.Constant(_logit(hi)))

    def call(self, z):
        uniform = 0.5 * (1.0 + tf.math.erf(tf.cast(z[:, :1], tf.float32) / math.sqrt(2.0)))
        lo, hi = tf.sigmoid(self.lo_logit), tf.sigmoid(self.hi_logit)
        level = lo + (hi - lo) * uniform
        presence = tf.clip_by_value(self.count * level - tf.range(self.count, dtype=tf.float32)[None], 0.0, 1.0)
        return presence, level

    def get_config(self):
        return {**super().get_config(), "count": self.count}


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


class LaguerreLogits(layers.Layer):
    """(sites, weights) -> label logits beta * (2 s_k.x - |s_k|^2 + w_k) at every pixel, beta learnt."""

    def __init__(self, size: int, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.size = size

    def build(self, input_shape):
        self.log_beta = self.add_weight(
            name="log_beta", shape=(), initializer=keras.initializers.Constant(math.log(INITIAL_SHARPNESS))
        )

    def call(self, inputs):
        sites, weights = inputs
        centres = (tf.range(self.size, dtype=tf.float32) + 0.5) / self.size
        sx = sites[:, None, None, :, 0]
        sy = sites[:, None, None, :, 1]
        power = (
            2.0 * (sx * centres[None, None, :, None] + sy * centres[None, :, None, None])
            - (sx * sx + sy * sy)
            + weights[:, None, None, :]
        )
        return tf.exp(self.log_beta) * power

    def get_config(self):
        return {**super().get_config(), "size": self.size}


class RenderBoundaries(layers.Layer):
    """Label logits [B, H, W, K] -> boundary images [B, H, W, 1] (training.render)."""

    def __init__(self, width: int, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.width = width

    def call(self, logits):
        return render_partition(logits, self.width)

    def get_config(self):
        return {**super().get_config(), "width": self.width}


def partition_outputs(generator: keras.Model) -> keras.Model | None:
    """A model sharing the generator's layers: z -> {"logits"[, "sites", "weights"]}; None for pixel heads."""
    names = {layer.name for layer in generator.layers}
    if "logits" not in names:
        return None
    outputs = {"logits": generator.get_layer("logits").output}
    if "sites" in names:
        outputs["sites"], outputs["weights"] = generator.get_layer("sites").output
    return keras.Model(generator.input, outputs, name="partition")
