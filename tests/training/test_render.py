"""training.render: the dataset's boundary rule drawn from a partition, and its straight-through gradient."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from microstructure.images import to_uint8
from training.config import MAX_RENDER_WIDTH
from training.render import autodiff_render, render_partition
from training.voronoi import VoronoiSpec, generate


@pytest.mark.parametrize("width", range(1, MAX_RENDER_WIDTH + 1))
def test_render_of_dataset_labels_is_the_dataset_image_bit_for_bit(width):
    images, labels = generate(VoronoiSpec(width=width), 24, np.random.default_rng(width))
    logits = 3.0 * tf.one_hot(labels.astype(np.int32) - 1, VoronoiSpec().grains_max)
    rendered = render_partition(logits, width).numpy()
    assert rendered.shape == (24, 64, 64, 1) and set(np.unique(rendered)) <= {-1.0, 1.0}
    assert np.array_equal(to_uint8(rendered[..., 0]), images)


def test_render_is_exactly_binary_for_any_logits():
    logits = tf.image.resize(tf.random.stateless_normal([4, 8, 8, 16], seed=[1, 2]), [64, 64])  # grains, not noise
    assert set(np.unique(render_partition(logits, 2).numpy())) == {-1.0, 1.0}


@pytest.mark.parametrize("width", [1, 2, 3])
def test_render_gradient_is_the_soft_rule_gradient_at_the_hard_partition(width):
    """The hand-written backward pass equals autodiff of the soft rule through a straight-through softmax."""
    logits = 2.0 * tf.random.stateless_normal([2, 20, 20, 6], seed=[3, width])
    upstream = tf.random.stateless_normal([2, 20, 20, 1], seed=[4, width])

    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        ours = tf.reduce_sum(render_partition(logits, width) * upstream)
        reference = tf.reduce_sum(autodiff_render(logits, width) * upstream)
    assert float(ours) == pytest.approx(float(reference))
    ours_grad, reference_grad = tape.gradient(ours, logits), tape.gradient(reference, logits)
    assert float(tf.reduce_max(tf.abs(reference_grad))) > 0.01  # the check compares something
    np.testing.assert_allclose(ours_grad.numpy(), reference_grad.numpy(), atol=1e-6)
