"""What an exported model offers: the tf.Module saved as a SavedModel, and its signatures.

  serving_default(z float32 [B, z_dim]) -> images float32 [B, 64, 64, 1] in [-1, 1]
  sample(seeds int64 [B], indices int64 [B]) -> images uint8 [B, 64, 64]; image b is a function of
      the model and (seeds[b], indices[b]) alone: its latent is stateless_normal(seed=[seed, index]).
  partition(seeds, indices) -> labels int32 [B, 64, 64] (the label each pixel takes, 0..g_sites-1),
      and for the laguerre head sites float32 [B, g_sites, 2] ((x, y) in px from the image's top-left
      corner) and weights float32 [B, g_sites] (px^2): pixel centre p belongs to the site with the
      smallest |p - site|^2 - weight. Only for the partition heads (the card's "head" says which).
Models conditioned on grains per image (config condition=grains; the card's "condition" holds the
trained range and histogram) draw each image's count in `sample` and `partition` from the training
histogram, a function of (seed, index), and add
  sample_grains(seeds, indices, grains int32 [B]) -> images, and partition_grains(...) for partition
      heads: image b drawn with grains[b] grains (0 = drawn as `sample` does, the same bytes).
"""

from __future__ import annotations

MAX_SAMPLE_BATCH = 8192  # largest B the sample signature accepts
PARTITION_SIGNATURES = {
    "laguerre": "seeds int64 [B], indices int64 [B] -> labels int32 [B, 64, 64], sites float32 [B, K, 2] "
    "(x, y px), weights float32 [B, K] (px^2)",
    "partition": "seeds int64 [B], indices int64 [B] -> labels int32 [B, 64, 64]",
}


def tf_module(generator, z_dim: int, grains: dict | None = None):
    """The tf.Module saved: the signatures below, for a conditional generator also the `_grains`
    signatures and `grain_histogram` (int64 [k, 2] rows of (count, training images))."""
    import numpy as np
    import tensorflow as tf

    from microstructure.images import SIZE
    from training.heads import partition_outputs

    partition = partition_outputs(generator)
    conditional = isinstance(generator.input, dict)
    id_spec = [tf.TensorSpec([None], tf.int64, name="seeds"), tf.TensorSpec([None], tf.int64, name="indices")]
    grains_spec = [*id_spec, tf.TensorSpec([None], tf.int32, name="grains")]
    most = generator.get_layer("grain_prior").most if conditional else 0

    def inputs(seeds, indices, grains=None):
        """The networks' input for images (seeds, indices) [with these grain counts; 0 = drawn]."""
        z = latents(seeds, indices)
        if not conditional:
            return z
        if grains is None:
            grains = tf.zeros(tf.shape(seeds), tf.int32)
        checks = [
            tf.debugging.assert_equal(tf.shape(grains), tf.shape(seeds), message="grains and seeds differ in length"),
            tf.debugging.assert_non_negative(grains, message="grains must be >= 0 (0 = drawn)"),
            tf.debugging.assert_less_equal(grains, most, message=f"grains above {most}"),
        ]
        with tf.control_dependencies(checks):
            return {"z": z, "grains": tf.identity(grains)}

    def latents(seeds, indices):
        checks = [
            tf.debugging.assert_equal(tf.shape(seeds), tf.shape(indices), message="seeds and indices differ in length"),
            tf.debugging.assert_non_negative(seeds, message="seeds must be >= 0"),
            tf.debugging.assert_non_negative(indices, message="indices must be >= 0"),
            tf.debugging.assert_less_equal(tf.size(seeds), MAX_SAMPLE_BATCH, message=f"batch above {MAX_SAMPLE_BATCH}"),
        ]
        with tf.control_dependencies(checks):
            pairs = tf.stack([seeds, indices], axis=1)
        return tf.vectorized_map(lambda pair: tf.random.stateless_normal([z_dim], seed=pair), pairs)

    class Generator(tf.Module):
        def __init__(self):
            super().__init__(name="microgan_generator")
            self.generator = generator

        @tf.function(input_signature=[tf.TensorSpec([None, z_dim], tf.float32, name="z")])
        def serve(self, z):
            return {"images": tf.cast(self.generator(draw_counts(z), training=False), tf.float32)}

        @tf.function(input_signature=id_spec)
        def sample(self, seeds, indices):
            return uint8_images(self.generator(inputs(seeds, indices), training=False))

    def draw_counts(z):
        return {"z": z, "grains": tf.zeros(tf.shape(z)[:1], tf.int32)} if conditional else z

    def uint8_images(images):
        images = tf.cast(images, tf.float32)[..., 0]
        # Same mapping as microstructure.images.to_uint8 (round half to even, clip).
        return {"images": tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0, 255), tf.uint8)}

    def partition_result(out):
        result = {"labels": tf.argmax(out["logits"], axis=-1, output_type=tf.int32)}
        if "sites" in out:  # unit coordinates -> pixels (x, y), weights -> pixels squared
            result["sites"] = tf.cast(out["sites"], tf.float32) * SIZE
            result["weights"] = tf.cast(out["weights"], tf.float32) * SIZE**2
        return result

    module = Generator()
    if partition is not None:  # only heads that draw a partition export one
        module.partition = tf.function(
            lambda seeds, indices: partition_result(partition(inputs(seeds, indices), training=False)),
            input_signature=id_spec,
        )
    if conditional:
        if grains is None:
            raise ValueError("a generator conditioned on grains needs the training set's grain record")
        module.sample_grains = tf.function(
            lambda seeds, indices, grains: uint8_images(generator(inputs(seeds, indices, grains), training=False)),
            input_signature=grains_spec,
        )
        rows = sorted((int(count), int(n)) for count, n in grains["histogram"].items())
        module.grain_histogram = tf.Variable(np.array(rows, np.int64), trainable=False, name="grain_histogram")
        if partition is not None:
            module.partition_grains = tf.function(
                lambda seeds, indices, grains: partition_result(
                    partition(inputs(seeds, indices, grains), training=False)
                ),
                input_signature=grains_spec,
            )
    return module


def signatures(module) -> dict:
    """The exported signatures: partition only for heads that draw one, `_grains` for conditional ones."""
    found = {"serving_default": module.serve, "sample": module.sample}
    for name in ("partition", "sample_grains", "partition_grains"):
        if hasattr(module, name):
            found[name] = getattr(module, name)
    return found


def conditional_signatures(cfg) -> dict:
    """The card's lines for the signatures a grain-conditioned model adds."""
    found = {"sample_grains": "seeds int64 [B], indices int64 [B], grains int32 [B] -> images uint8 [B, 64, 64]"}
    if cfg.g_head in PARTITION_SIGNATURES:
        found["partition_grains"] = "seeds, indices, grains -> as partition"
    return found
