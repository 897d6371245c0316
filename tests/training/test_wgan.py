"""The generator's moving average (training.wgan.WeightAverage) and the optional top conv of the generator."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from training.wgan import WeightAverage


def _model(value: float) -> keras.Model:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, kernel_initializer="zeros")])
    model.set_weights([np.full((3, 2), value, np.float32), np.full(2, value, np.float32)])
    return model


def test_average_starts_at_the_model_and_follows_it_with_warmed_up_decay():
    model, twin = _model(1.0), _model(-5.0)
    average = WeightAverage(model, twin, decay=0.9)
    assert all(np.array_equal(a, b) for a, b in zip(twin.get_weights(), model.get_weights()))

    model.set_weights([np.full((3, 2), 3.0, np.float32), np.full(2, 3.0, np.float32)])
    average.update(1)  # early: decay min(0.9, 2/11)
    early = 2 / 11
    assert twin.get_weights()[0][0, 0] == pytest.approx(early * 1.0 + (1 - early) * 3.0)
    average.update(1000)  # late: the configured decay
    expected = 0.9 * (early + (1 - early) * 3.0) + 0.1 * 3.0
    assert np.allclose(twin.get_weights()[0], expected) and np.allclose(twin.get_weights()[1], expected)
    assert np.all(model.get_weights()[0] == 3.0)  # the model itself is untouched


def test_average_needs_a_twin_of_the_same_build():
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, use_bias=False)])
    with pytest.raises(ValueError, match="architecture"):
        WeightAverage(_model(1.0), other, decay=0.9)


def test_generator_top_conv_is_optional_and_keeps_the_original_arrangement_by_default():
    from training.config import resolve
    from training.networks import build_generator

    original = build_generator(resolve("tiny", overrides=["g_head=image"]))
    topped = build_generator(resolve("tiny", overrides=["g_head=image", "g_top=8"]))
    names = {layer.name for layer in topped.layers}
    assert "conv_top" in names and "conv_top" not in {layer.name for layer in original.layers}
    assert topped.output_shape == original.output_shape == (None, 64, 64, 1)
    # conv_top: 3x3 from the last width (8) to 8, and the output conv now reads 8 channels (as before).
    assert topped.count_params() - original.count_params() == 3 * 3 * 8 * 8 + 8


def test_generator_convs_per_block_add_depth_at_each_resolution():
    from training.config import resolve
    from training.networks import build_generator

    original = build_generator(resolve("tiny", overrides=["g_head=image"]))
    deeper = build_generator(resolve("tiny", overrides=["g_head=image", "g_convs=2"]))
    added = {layer.name for layer in deeper.layers} - {layer.name for layer in original.layers}
    assert {"conv1_2", "conv2_2", "conv3_2"} <= added
    assert deeper.output_shape == original.output_shape == (None, 64, 64, 1)
    # tiny widths 16, 8, 8: one more width->width 3x3 conv (with bias) per block.
    assert deeper.count_params() - original.count_params() == sum(9 * w * w + w for w in (16, 8, 8))
