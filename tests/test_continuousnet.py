"""ContinuousNet: the ResNet it generalises, convergence in depth, re-manifestation, batch norm across depth."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynlearn.analysis import fit_convergence_rate
from dynlearn.continuousnet import ContinuousNet


def trained_a_little(**kwargs) -> ContinuousNet:
    """A small network whose batch-norm statistics have seen a few training batches (no optimiser needed)."""
    torch.manual_seed(0)
    net = ContinuousNet(widths=(4, 8, 8), **kwargs)
    net.train()
    for _ in range(3):
        net(torch.randn(8, 3, 16, 16))
    return net.eval()


def test_euler_with_one_step_per_piece_is_the_resnet():
    net = trained_a_little(pieces=3, basis="piecewise_constant", scheme="euler")
    x = torch.randn(5, 3, 16, 16)
    resnet = net.to_resnet().eval()
    assert sum(len(stage) for stage in resnet.blocks) == 9  # three blocks per stage, ordinary batch norm
    with torch.no_grad():
        torch.testing.assert_close(resnet(x), net(x), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="euler and one step per piece"):
        net.manifest(scheme="rk4").to_resnet()


@pytest.mark.parametrize("scheme, order", [("midpoint", 2), ("rk4", 4), ("rk38", 4)])
def test_more_steps_converge_at_the_order_of_the_scheme(scheme, order):
    """A convergence test in depth: the change of the output as N doubles shrinks like N^-order (a smooth
    activation: with ReLU the field has kinks and the order drops to about 2)."""
    net = trained_a_little(pieces=3, basis="piecewise_constant", activation="tanh").double()
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    steps = [3, 6, 12, 24]
    with torch.no_grad():
        reference = net.manifest(scheme=scheme, n_steps=384)(x)
        errors = [float((net.manifest(scheme=scheme, n_steps=n)(x) - reference).abs().max()) for n in steps]
    rate = fit_convergence_rate([1.0 / n for n in steps], errors)
    assert abs(rate.rate - order) < 0.3, (errors, rate.rate)


def test_refining_the_basis_keeps_the_network_and_statistics_travel_with_it():
    net = trained_a_little(pieces=3, basis="piecewise_linear", scheme="rk4", n_steps=6)
    x = torch.randn(4, 3, 16, 16)
    refined = net.manifest(pieces=6)
    assert refined.blocks[0].conv1.shape[0] == 7
    with torch.no_grad():
        torch.testing.assert_close(refined(x), net(x), rtol=1e-5, atol=1e-5)
        coarse = refined.manifest(pieces=3)
        torch.testing.assert_close(coarse(x), net(x), rtol=1e-5, atol=1e-5)


def test_basis_coefficients_start_different():
    net = ContinuousNet(pieces=4, widths=(4, 4, 4))
    weights = net.blocks[0].conv1.detach()
    for a in range(4):
        for b in range(a + 1, 4):
            assert not torch.allclose(weights[a], weights[b])


def test_fewer_training_steps_than_pieces_leave_unvisited_statistics_alone():
    torch.manual_seed(1)
    net = ContinuousNet(pieces=4, widths=(4, 4, 4), scheme="euler", n_steps=2)  # stages at t = 0 and 1/2
    net.train()
    for _ in range(5):
        net(3.0 + torch.randn(8, 3, 8, 8))
    norm = net.blocks[0].norm1
    visited = [0, 2]
    assert torch.all(norm.running_mean[visited].abs().sum(dim=1) > 0)
    torch.testing.assert_close(norm.running_mean[[1, 3]], torch.zeros(2, 4))
    torch.testing.assert_close(norm.running_var[[1, 3]], torch.ones(2, 4))
