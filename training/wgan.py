"""The WGAN-GP: Wasserstein losses, gradient penalty, n_critic critic steps per generator step.

    wgan = WGANGP(build_generator(cfg), build_critic(cfg), gp_weight=10, n_critic=1)
    wgan.compile(g_optimizer=make_optimizer(...), d_optimizer=make_optimizer(...))
    losses = wgan.train_step({"real": ..., "z_d": ..., "alpha": ..., "z_g": ...})

All randomness arrives in the batch (noise and interpolation weights drawn by the caller from
(seed, step)), so a step is a pure function of weights, optimizer state and batch: resumes replay
exactly and every replica of a distributed step sees its own slice of one global draw.
Losses are divided by the number of replicas so that the optimizers' cross-replica sum of gradients
is the gradient of the global-batch mean.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras
import tensorflow as tf

if TYPE_CHECKING:
    from training.config import TrainConfig

GP_EPSILON = 1e-12  # keeps sqrt differentiable where a gradient norm is 0


def critic_loss(real_score: tf.Tensor, fake_score: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(fake_score) - tf.reduce_mean(real_score)


def generator_loss(fake_score: tf.Tensor) -> tf.Tensor:
    return -tf.reduce_mean(fake_score)


def pack(images: tf.Tensor, size: int) -> tf.Tensor:
    """[B, H, W, 1] -> [B / size, H, W, size]: consecutive images stacked as channels for the critic.

    PacGAN (Lin et al. 2018): a critic that judges several samples at once sees how they vary
    together, so a generator that covers too little of the data (here: too narrow a spread of grain
    counts) is easier to tell from it. size 1 is the plain critic.
    """
    if size == 1:
        return images
    height, width = images.shape[1], images.shape[2]
    grouped = tf.reshape(images, [-1, size, height, width])
    return tf.transpose(grouped, [0, 2, 3, 1])


def judge(critic: keras.Model, images: tf.Tensor, grains: tf.Tensor | None = None) -> tf.Tensor:
    """The critic's float32 scores of images, or of (image, grain count) pairs for a conditional critic."""
    inputs = images if grains is None else {"images": images, "grains": grains}
    return tf.cast(critic(inputs, training=True), tf.float32)


def gradient_penalty(
    critic: keras.Model, real: tf.Tensor, fake: tf.Tensor, alpha: tf.Tensor, grains: tf.Tensor | None = None
) -> tf.Tensor:
    """Mean of (||grad critic(x_hat)|| - 1)^2 on per-sample interpolates, in float32 (a conditional
    critic sees each interpolate with the count its real and fake ends share)."""
    real = tf.cast(real, tf.float32)
    fake = tf.cast(fake, tf.float32)
    interpolates = real + tf.cast(alpha, tf.float32) * (fake - real)
    with tf.GradientTape() as tape:
        tape.watch(interpolates)
        score = judge(critic, interpolates, grains)
    grads = tf.cast(tape.gradient(score, interpolates), tf.float32)
    norm = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]) + GP_EPSILON)
    return tf.reduce_mean(tf.square(norm - 1.0))


def make_optimizer(learning_rate: float, decay_steps: int, cfg, mixed: bool) -> keras.optimizers.Optimizer:
    """Adam with optional cosine decay to 0; a LossScaleOptimizer under mixed precision."""
    schedule = (
        keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(decay_steps, 1))
        if cfg.cosine_decay
        else learning_rate
    )
    optimizer = keras.optimizers.Adam(schedule, beta_1=cfg.beta_1, beta_2=cfg.beta_2)
    return keras.optimizers.LossScaleOptimizer(optimizer) if mixed else optimizer


def current_lr(optimizer: keras.optimizers.Optimizer) -> float:
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    rate = inner.learning_rate
    return float(rate.numpy() if hasattr(rate, "numpy") else rate)


class WGANGP(keras.Model):
    def __init__(
        self, generator: keras.Model, critic: keras.Model, gp_weight: float = 10.0, n_critic: int = 1, d_pack: int = 1
    ):
        super().__init__(name="wgan_gp")
        self.generator = generator
        self.critic = critic
        self.gp_weight = gp_weight
        self.n_critic = n_critic
        self.d_pack = d_pack

    def compile(self, g_optimizer: keras.optimizers.Optimizer, d_optimizer: keras.optimizers.Optimizer):
        super().compile()
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer

    def build_optimizers(self) -> None:
        """Create optimizer slots now, so a restore fills them instead of being silently dropped."""
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.critic.trainable_variables)

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def _generate(self, z, grains=None):
        inputs = z if grains is None else {"z": z, "grains": grains}
        return tf.cast(self.generator(inputs, training=True), tf.float32)

    @staticmethod
    def _scaled(optimizer, loss):
        # Under mixed precision the loss is scaled inside the tape; the optimizer unscales the grads.
        return optimizer.scale_loss(loss) if isinstance(optimizer, keras.optimizers.LossScaleOptimizer) else loss

    def train_step(self, batch):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync

        # Critic phase: n_critic updates, each on its own real batch and noise. A conditional run's
        # fakes are drawn with the real batch's grain counts, and the critic judges (image, count).
        conditional = "grains" in batch
        for i in range(self.n_critic):
            real = pack(tf.cast(batch["real"][i], tf.float32), self.d_pack)
            grains = batch["grains"][i] if conditional else None
            with tf.GradientTape() as tape:
                fake = pack(self._generate(batch["z_d"][i], grains), self.d_pack)
                both = None if grains is None else tf.concat([grains, grains], axis=0)
                scores = judge(self.critic, tf.concat([real, fake], axis=0), both)
                real_score, fake_score = tf.split(scores, 2, axis=0)
                wasserstein = -critic_loss(real_score, fake_score)
                alpha = batch["alpha"][i][: tf.shape(real)[0]]  # one interpolation weight per critic sample
                gp = gradient_penalty(self.critic, real, fake, alpha, grains)
                d_loss = -wasserstein + self.gp_weight * gp
                scaled = self._scaled(self.d_optimizer, d_loss / replicas)
            grads = tape.gradient(scaled, self.critic.trainable_variables)
            self.d_optimizer.apply_gradients(zip(grads, self.critic.trainable_variables))

        # Generator phase.
        grains = batch["grains_g"] if conditional else None
        with tf.GradientTape() as tape:
            fake = pack(self._generate(batch["z_g"], grains), self.d_pack)
            g_loss = generator_loss(judge(self.critic, fake, grains))
            scaled = self._scaled(self.g_optimizer, g_loss / replicas)
        grads = tape.gradient(scaled, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_variables))

        # Per-replica shares: a SUM across replicas gives the global-batch figures.
        return {
            "d_loss": d_loss / replicas,
            "g_loss": g_loss / replicas,
            "wasserstein": wasserstein / replicas,
            "gp": gp / replicas,
        }


class WeightAverage:
    """An exponential moving average of a model's weights, kept in a twin model of the same build.

        average = WeightAverage(generator, build_generator(cfg), decay=0.999)
        average.update(step)             # after each generator step
        images = average.twin(z)         # frames, evaluation and export sample from the twin

    A GAN generator keeps circling a good solution rather than settling on it; the average of its
    recent weights draws steadier samples (Yazici et al. 2019, "The unusual effectiveness of
    averaging in GAN training"). The decay warms up as min(decay, (1 + t) / (10 + t)) at step t, so
    the average is not held back by the random initial weights.
    """

    def __init__(self, model: keras.Model, twin: keras.Model, decay: float) -> None:
        if len(model.weights) != len(twin.weights):
            raise ValueError("the twin must have the model's architecture")
        self.model, self.twin, self.decay = model, twin, decay
        self.reset()

    def reset(self) -> None:
        """Start the average at the model's current weights."""
        for average, weight in zip(self.twin.weights, self.model.weights):
            average.assign(weight)

    def update(self, step: int) -> None:
        self._update(tf.constant(step, tf.float32))

    @tf.function
    def _update(self, step: tf.Tensor) -> None:
        decay = tf.minimum(tf.constant(self.decay, tf.float32), (1.0 + step) / (10.0 + step))
        for average, weight in zip(self.twin.weights, self.model.weights):
            average.assign(decay * average + (1.0 - decay) * weight)


def build_wgan(cfg: TrainConfig, strategy, mixed: bool, total_steps: int, grains: dict | None = None):
    """The WGAN-GP with its optimizers; `grains` (a training.conditions record) for a conditional run."""
    from training.networks import build_critic, build_generator, set_grain_histogram

    with strategy.scope():
        generator = build_generator(cfg)
        if grains is not None:
            set_grain_histogram(generator, grains)
        wgan = WGANGP(generator, build_critic(cfg), cfg.gp_weight, cfg.n_critic, cfg.d_pack)
        wgan.compile(
            g_optimizer=make_optimizer(cfg.g_learning_rate, total_steps, cfg, mixed),
            d_optimizer=make_optimizer(cfg.d_learning_rate, total_steps * cfg.n_critic, cfg, mixed),
        )
        wgan.build_optimizers()
    return wgan


def build_average(cfg: TrainConfig, strategy, wgan):
    """The generator's moving average (None when ema_decay is 0)."""
    from training.networks import build_generator

    if not cfg.ema_decay:
        return None
    with strategy.scope():
        return WeightAverage(wgan.generator, build_generator(cfg), cfg.ema_decay)
