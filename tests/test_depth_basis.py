"""Basis functions in depth: stage-to-piece mapping with integers, exact refinement, L2 projections."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dynlearn.continuousnet.depth_basis import Legendre, PiecewiseConstant, PiecewiseLinear, make_basis, project, stage_piece, stage_times
from dynlearn.integration.tableaus import get_tableau


def nodes_of(scheme: str) -> list[Fraction]:
    return [Fraction(str(c)) for c in get_tableau(scheme).c]


@pytest.mark.parametrize("scheme", ["euler", "midpoint", "rk4", "rk38"])
@pytest.mark.parametrize("n_steps", [7, 9, 12])
@pytest.mark.parametrize("pieces", [3, 4, 6])
def test_every_stage_reads_the_piece_that_holds_it(scheme, n_steps, pieces):
    for step, node in stage_times(n_steps, nodes_of(scheme)):
        t = (Fraction(step) + node) / n_steps
        piece = stage_piece(step, node, n_steps, pieces)
        low, high = Fraction(piece, pieces), Fraction(piece + 1, pieces)
        assert low <= t <= high
        # on a boundary: the end of a step reads the piece to its left, anything else the piece to its right
        if t == high:
            assert node == 1
        if t == low and piece > 0:
            assert node != 1


def test_float_rounding_would_pick_wrong_pieces_and_integers_do_not():
    """The pitfall of the reference implementations: float32 int(K t), with a 1e-15 nudge for the last stage,
    misreads stages for N not a power of two; the integer mapping is the exact floor."""
    wrong = 0
    for n_steps in (7, 9, 12):
        for pieces in (3, 4, 6):
            for step, node in stage_times(n_steps, nodes_of("rk38")):
                t = np.float32(step / n_steps + float(node) / n_steps)
                nudged = t - np.float32(1e-15) if node == 1 else t
                wrong += min(int(pieces * nudged), pieces - 1) != stage_piece(step, node, n_steps, pieces)
    assert wrong > 0  # the float rule really fails (14 of 336 stages)


def test_runge_kutta_with_one_step_per_piece_reads_only_that_piece():
    for scheme in ("euler", "midpoint", "rk4", "rk38"):
        for step, node in stage_times(8, nodes_of(scheme)):
            assert stage_piece(step, node, 8, 8) == step


def test_steps_are_counted_with_integers():
    for n_steps in range(1, 50):
        stages = stage_times(n_steps, [Fraction(0)])
        assert len(stages) == n_steps and stages[-1][0] == n_steps - 1
    with pytest.raises(ValueError, match="n_steps must be an integer >= 1, got 0"):
        stage_times(0, [Fraction(0)])


coefficient_arrays = st.integers(1, 6).flatmap(
    lambda k: st.tuples(st.just(k), st.lists(st.floats(-10, 10), min_size=2 * k + 1, max_size=2 * k + 1)))


@given(coefficient_arrays, st.sampled_from(["piecewise_constant", "piecewise_linear", "legendre"]))
def test_refinement_keeps_the_function_and_coarsening_undoes_it(data, family):
    pieces, values = data
    coarse = make_basis(family, pieces)
    fine = make_basis(family, 2 * pieces)
    theta = torch.tensor(values[:coarse.size], dtype=torch.float64)[:, None]
    refined = project(theta, coarse, fine)
    for t in np.linspace(0.013, 0.987, 41):  # away from the breakpoints of both
        np.testing.assert_allclose(fine.weights(t) @ refined.numpy(), coarse.weights(t) @ theta.numpy(), atol=1e-9)
    np.testing.assert_allclose(project(refined, fine, coarse).numpy(), theta.numpy(), atol=1e-9)


@given(st.integers(1, 5), st.integers(1, 5), st.lists(st.floats(-5, 5), min_size=6, max_size=6))
def test_l2_projection_is_idempotent_and_its_residual_is_orthogonal(source_pieces, target_pieces, values):
    source, target = PiecewiseLinear(source_pieces), PiecewiseConstant(target_pieces)
    theta = torch.tensor(values[:source.size], dtype=torch.float64)
    projected = project(theta, source, target)
    np.testing.assert_allclose(project(projected, target, target).numpy(), projected.numpy(), atol=1e-12)
    # the residual source - projection has zero mean on every target piece: the trapezoid rule on a grid that
    # holds every breakpoint of both bases integrates the piecewise-linear residual exactly
    for piece in range(target_pieces):
        grid = piece / target_pieces + np.arange(source_pieces + 1) / (source_pieces * target_pieces)
        residual = np.array([source.weights(t) @ theta.numpy() - projected[piece].item() for t in grid])
        assert abs(np.trapezoid(residual, grid)) < 1e-12


def test_piecewise_constant_of_piecewise_constant_projection_is_the_overlap_average():
    theta = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)  # K = 3 onto K = 2
    np.testing.assert_allclose(project(theta, PiecewiseConstant(3), PiecewiseConstant(2)).numpy(),
                               [(1.0 * 2 + 2.0 * 1) / 3, (2.0 * 1 + 3.0 * 2) / 3], atol=1e-14)
    assert Legendre(3).weights(1.0).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="basis must be one of"):
        make_basis("fourier", 3)
