"""Skeleton, junctions and defects of hand-built boundary images."""

from __future__ import annotations

import numpy as np

from microstructure import network
from microstructure.network import analyse

SIZE = 64


def straight() -> np.ndarray:
    boundary = np.zeros((1, SIZE, SIZE), bool)
    boundary[0, 31:33, :] = True
    return boundary


def test_analyse_straight_boundary_has_no_defects():
    net = analyse(straight())
    assert net.end_count.tolist() == [0]
    assert net.fragment_count.tolist() == [0]
    assert net.defect_free.tolist() == [True]


def test_analyse_broken_boundary_has_two_dangling_ends():
    boundary = straight()
    boundary[0, 31:33, 20:26] = False  # a 6 px gap
    net = analyse(boundary)
    assert net.end_count.tolist() == [2]
    assert net.fragment_count.tolist() == [0]  # both halves run to the border
    ys, xs = np.nonzero(net.ends[0])
    assert set(xs.tolist()) <= {18, 19, 26, 27} and set(ys.tolist()) <= {31, 32}


def test_analyse_detached_speck_is_a_fragment():
    boundary = straight()
    boundary[0, 10:13, 40:43] = True  # a 3x3 blob inside a grain
    net = analyse(boundary)
    assert net.fragment_count.tolist() == [1]
    assert net.fragments[0].sum() == 9
    assert net.defect_free.tolist() == [False]


def test_analyse_loose_line_has_ends_and_is_a_fragment():
    boundary = straight()
    boundary[0, 10:12, 15:45] = True  # 30 px of boundary touching nothing
    net = analyse(boundary)
    assert net.fragment_count.tolist() == [1]
    assert net.end_count.tolist() == [2]


def test_analyse_closed_grain_inside_the_image_is_not_a_defect():
    boundary = straight()
    ys, xs = np.indices((SIZE, SIZE))
    ring = np.abs(np.hypot(ys - 12, xs - 32) - 7) < 1.0  # a closed loop around a grain
    boundary[0] |= ring
    net = analyse(boundary)
    assert net.fragment_count.tolist() == [0]
    assert net.end_count.tolist() == [0]


def test_analyse_ends_near_the_border_are_not_dangling():
    boundary = straight()
    boundary[0, 31:33, : network.MARGIN] = False  # stops MARGIN px short of the left edge
    assert analyse(boundary).end_count.tolist() == [0]
    boundary[0, 31:33, : network.MARGIN + 3] = False
    assert analyse(boundary).end_count.tolist() == [1]


def test_analyse_short_spur_is_pruned():
    boundary = straight()
    boundary[0, 33 : 33 + network.SPUR - 2, 40:42] = True  # a short twig below the line
    net = analyse(boundary)
    assert net.end_count.tolist() == [0]
    assert net.junction_count.tolist() == [0]


def test_analyse_works_image_by_image():
    broken = straight()
    broken[0, 31:33, 20:26] = False
    stack = np.concatenate([straight(), broken, np.zeros((1, SIZE, SIZE), bool), straight()])
    net = analyse(stack)
    assert net.end_count.tolist() == [0, 2, 0, 0]
    assert net.fragment_count.tolist() == [0, 0, 0, 0]
