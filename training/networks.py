"""Generator and critic factories: the original notebook's arrangement at configurable widths, and
generator heads that draw a partition of the image into grains (training.heads).

    >>> from training.config import resolve
    >>> from training.networks import build_generator, build_critic
    >>> cfg = resolve("tiny")
    >>> build_generator(cfg).output_shape, build_critic(cfg).output_shape
    ((None, 64, 64, 1), (None, 1))

No normalisation layers anywhere (batch norm breaks the per-sample gradient penalty and was left
out of the original's generator on purpose). Output layers compute in float32 under mixed precision.
"""

from __future__ import annotations

import keras
from keras import layers

from microstructure.images import SIZE
from training.condition_layers import CountFeatures, GrainPrior, NoRequest, Projection
from training.conditions import cumulative
from training.config import TrainConfig
from training.heads import SITE_BOX, CountGate, LaguerreLogits, LaguerreSites, RenderBoundaries


def _init(seed: int, offset: int) -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(0.0, 0.02, seed=seed * 1000 + offset)


def build_generator(cfg: TrainConfig) -> keras.Model:
    """z -> images [B, 64, 64, 1] in [-1, 1], drawn by the head `cfg.g_head`:
    image: the conv generator's tanh pixels; laguerre: a Laguerre tessellation of `g_sites` sites from
    an MLP; partition: the conv generator ending in `g_sites` label logits. The partition heads draw
    boundaries with the dataset's rule (training.render) at `render_width` px."""
    z = keras.Input((cfg.z_noise_dim,), name="z")
    inputs, code, presence = z, z, None  # what the model takes, what its networks read, sites present
    if cfg.condition == "grains":
        grains = keras.Input((), dtype="int32", name="grains")
        inputs = {"z": z, "grains": grains}
        counts = GrainPrior(cfg.g_sites, name="grain_prior")([z, grains])
        onehot, presence = CountFeatures(cfg.g_sites, name="count_features")(counts)
        code = layers.Concatenate(name="z_and_grains")([z, onehot])
    if cfg.g_head == "laguerre":
        x, box = code, SITE_BOX
        if presence is not None:
            box = 1.0  # exactly `count` sites, all inside the image, as the data's seeds
        elif cfg.g_count == "uniform":
            presence, level = CountGate(cfg.g_sites, name="count")(z)
            x = layers.Concatenate(name="z_and_count")([z, level])
        for i in (1, 2):
            x = layers.Dense(cfg.g_hidden, kernel_initializer=_glorot(cfg.seed, 40 + i), name=f"mlp{i}")(x)
            x = layers.LeakyReLU(0.2)(x)
        raw = layers.Dense(3 * cfg.g_sites, kernel_initializer=_glorot(cfg.seed, 43), dtype="float32", name="raw")(x)
        equal = cfg.g_weights == "equal"
        sites = LaguerreSites(cfg.g_sites, box=box, equal_weights=equal, name="sites")(raw, presence)
        logits = LaguerreLogits(SIZE, name="logits")(list(sites))
        images = RenderBoundaries(cfg.render_width, name="images")(logits)
        return keras.Model(inputs, images, name="generator")
    x = _conv_backbone(cfg, code)
    if cfg.g_head == "partition":
        logits = layers.Conv2D(
            cfg.g_sites, 3, padding="same", kernel_initializer=_init(cfg.seed, 4), dtype="float32", name="logits"
        )(x)
        images = RenderBoundaries(cfg.render_width, name="images")(logits)
        return keras.Model(inputs, images, name="generator")
    x = layers.Conv2D(1, 3, padding="same", kernel_initializer=_init(cfg.seed, 4), name="conv_out")(x)
    images = layers.Activation("tanh", dtype="float32", name="images")(x)
    return keras.Model(inputs, images, name="generator")


def unconditional(generator: keras.Model) -> keras.Model:
    """A model z -> images sharing the generator's layers: the generator itself, or for a conditional
    generator one that draws every image's grain count from the training histogram (GrainPrior)."""
    if not isinstance(generator.input, dict):
        return generator
    z = keras.Input(generator.input["z"].shape[1:], name="z")
    return keras.Model(z, generator({"z": z, "grains": NoRequest(name="no_request")(z)}), name="sampler")


def set_grain_histogram(generator: keras.Model, record: dict) -> None:
    """Give a conditional generator the training data's grain-count histogram (a training.conditions record)."""
    prior = generator.get_layer("grain_prior")
    prior.set_cdf(cumulative(record, prior.most))


def _glorot(seed: int, offset: int) -> keras.initializers.Initializer:
    # The site MLP needs outputs of order 1 at the start (sites spread over the image), which
    # RandomNormal(0.02) through three dense layers would not give.
    return keras.initializers.GlorotUniform(seed=seed * 1000 + offset)


def _conv_backbone(cfg: TrainConfig, z) -> keras.KerasTensor:
    """z -> Dense(4*4*g_base) -> [Up -> (Conv3x3 -> LeakyReLU) x g_convs] x3 -> Up [-> Conv3x3(g_top) -> LeakyReLU]:
    64 px features for the output conv."""
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
    return x


def build_critic(cfg: TrainConfig) -> keras.Model:
    """[Conv stride 2 -> LeakyReLU] x4 -> Flatten -> Dense(1), linear float32 output; it judges `d_pack`
    images at once, stacked as channels (training.wgan.pack)."""
    images = keras.Input((SIZE, SIZE, cfg.d_pack), name="images")
    x = images
    for i, width in enumerate(cfg.d_filters, start=1):
        x = layers.Conv2D(
            width, cfg.d_kernel, strides=2, padding="same", kernel_initializer=_init(cfg.seed, 10 + i), name=f"conv{i}"
        )(x)
        x = layers.LeakyReLU(0.2)(x)
    x = layers.Flatten()(x)
    score = layers.Dense(1, kernel_initializer=_init(cfg.seed, 20), dtype="float32", name="score")(x)
    if cfg.condition == "grains":  # judges (image, count) pairs: the projection term
        grains = keras.Input((), dtype="int32", name="grains")
        projected = Projection(cfg.g_sites + 1, seed=cfg.seed * 1000 + 21, name="projection")([x, grains])
        score = layers.Add(dtype="float32", name="conditional_score")([score, projected])
        return keras.Model({"images": images, "grains": grains}, score, name="critic")
    return keras.Model(images, score, name="critic")
