"""Draw a partition's grain boundaries with the dataset's own rule, with straight-through gradients.

    >>> import tensorflow as tf
    >>> from training.render import render_partition
    >>> x = tf.range(64, dtype=tf.float32)[None, None, :, None]
    >>> logits = tf.concat([31.5 - x, x - 31.5], axis=-1) * tf.ones([2, 64, 1, 1])  # label 0 left, 1 right
    >>> images = render_partition(logits, width=2)          # [2, 64, 64, 1], exactly -1 or +1
    >>> sorted(set(images.numpy().ravel().tolist()))
    [-1.0, 1.0]
    >>> int(tf.reduce_sum(tf.cast(images[0] > 0, tf.int32)))  # a 2 px boundary down the middle
    128

Forward: every pixel takes its most likely label (argmax, so the partition is hard and the images are
exactly binary like the data) and is boundary (+1) when a neighbour of `microstructure
.boundaries.neighbour_offsets(width)` (the 4-neighbours at width 2) holds another label; a neighbour off the
image compares with the pixel itself, as in the synthetic data (`training.voronoi`). Grains are black (-1).

Backward (straight-through): the rule is written for a soft partition P (pixel x and its neighbour
x+o agree with "probability" <P(x), P(x+o)>, boundary = 1 - product over the neighbours), its
gradient is taken at the hard one-hot partition, and passed to the logits through the softmax. It
is written out by hand (`_backward`) rather than left to autodiff: the forward pass then needs only
integer label comparisons, and the backward pass touches the K label channels a few times instead
of keeping every product of the soft rule alive (`bench/variants.py` times the heads; a test checks
the gradient against autodiff of the soft rule).

Everything here computes in float32, also under mixed precision.
"""

from __future__ import annotations

import tensorflow as tf

from microstructure.boundaries import neighbour_offsets


def shift(tensor: tf.Tensor, dy: int, dx: int) -> tuple[tf.Tensor, tf.Tensor]:
    """(t[:, y + dy, x + dx], valid): the neighbour at (dy, dx) of every pixel of [B, H, W, ...], zero
    where it lies off the image, and a [1, H, W] float mask of where it lies on it."""
    height, width = tensor.shape[1], tensor.shape[2]
    rank = len(tensor.shape)
    pads = [[0, 0], [max(-dy, 0), max(dy, 0)], [max(-dx, 0), max(dx, 0)]] + [[0, 0]] * (rank - 3)
    padded = tf.pad(tensor, pads)
    y0, x0 = max(dy, 0), max(dx, 0)
    moved = padded[:, y0 : y0 + height, x0 : x0 + width]
    ones = tf.pad(tf.ones([1, height, width]), pads[:3])
    return moved, ones[:, y0 : y0 + height, x0 : x0 + width]


def soft_boundaries(partition: tf.Tensor, width: int) -> tf.Tensor:
    """The rule on a (soft) partition [B, H, W, K] -> boundary share [B, H, W] in [0, 1]."""
    same = tf.ones(tf.shape(partition)[:3], partition.dtype)
    for dy, dx in neighbour_offsets(width):
        neighbour, valid = shift(partition, dy, dx)
        agree = tf.reduce_sum(partition * neighbour, axis=-1)
        same *= valid * agree + (1.0 - valid)
    return 1.0 - same


def autodiff_render(logits: tf.Tensor, width: int) -> tf.Tensor:
    """What render_partition computes, left to autodiff: the soft rule on a straight-through one-hot
    (forward hard, backward through the softmax). Slower; the reference its gradient is checked
    against (tests) and timed against (bench/render.py)."""

    @tf.custom_gradient
    def straight_through(x):
        soft = tf.nn.softmax(x)

        def grad(upstream):
            return soft * (upstream - tf.reduce_sum(upstream * soft, axis=-1, keepdims=True))

        return tf.one_hot(tf.argmax(x, axis=-1), x.shape[-1]), grad

    return 2.0 * soft_boundaries(straight_through(tf.cast(logits, tf.float32)), width)[..., None] - 1.0


def _agreements(labels: tf.Tensor, width: int) -> tf.Tensor:
    """[O, B, H, W]: 1 where the pixel's label equals its neighbour's at each offset (or it is off-image)."""
    rows = []
    for dy, dx in neighbour_offsets(width):
        neighbour, valid = shift(labels, dy, dx)
        agree = tf.cast(tf.equal(labels, neighbour), tf.float32)
        rows.append(valid * agree + (1.0 - valid))
    return tf.stack(rows)


def render_partition(logits: tf.Tensor, width: int) -> tf.Tensor:
    """Label logits [B, H, W, K] -> boundary images [B, H, W, 1] in {-1, +1} (see the module doc)."""
    logits = tf.cast(logits, tf.float32)

    @tf.custom_gradient
    def render(logits):
        labels = tf.argmax(logits, axis=-1, output_type=tf.int32)
        agreements = _agreements(labels, width)
        images = 2.0 * (1.0 - tf.reduce_prod(agreements, axis=0)) - 1.0

        def grad(upstream):
            return _backward(logits, labels, agreements, 2.0 * upstream[..., 0], width)

        return images[..., None], grad

    return render(logits)


def _backward(logits, labels, agreements, grad_boundary, width):
    """d loss / d logits of the soft rule at the hard partition, through the softmax."""
    k = logits.shape[-1]
    hard = tf.one_hot(labels, k, dtype=tf.float32)
    offsets = neighbour_offsets(width)
    grad_partition = tf.zeros_like(hard)
    for i, (dy, dx) in enumerate(offsets):
        # d boundary(x) / d agree_o(x) = -(product of the other agreements at x), where o is on the image.
        others = tf.reduce_prod(tf.concat([agreements[:i], agreements[i + 1 :]], axis=0), axis=0)
        neighbour, valid = shift(hard, dy, dx)
        coeff = -grad_boundary * others * valid
        # agree_o(x) = <P(x), P(x+o)>: its gradient reaches P(x) as P(x+o), and P(x+o) as P(x).
        back, _ = shift(coeff[..., None] * hard, -dy, -dx)
        grad_partition += coeff[..., None] * neighbour + back
    soft = tf.nn.softmax(logits)
    return soft * (grad_partition - tf.reduce_sum(grad_partition * soft, axis=-1, keepdims=True))
