"""Hypothesis strategies and helpers for property-based tests of integrators and learned models.

Needs the ``test`` extra (hypothesis). Example, the test users copy::

    from hypothesis import given
    from dynlearn.analysis import convergence_test
    from dynlearn.analysis.testing import stable_matrices
    from dynlearn.systems import LinearSystem

    @given(stable_matrices())
    def test_rk4_is_fourth_order(matrix):
        system = LinearSystem(matrix)
        x0 = torch.eye(system.dimension, dtype=torch.float64)   # every direction at once
        result = convergence_test(system, x0, 1.0, reference=lambda t: system.solution(x0, t),
                                  schemes=["rk4"], n_steps=[8, 16, 32, 64])
        result.assert_orders(tolerance=0.2)
"""

from __future__ import annotations

import math

import torch

try:
    from hypothesis import strategies as st
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "dynlearn.analysis.testing needs hypothesis: pip install 'dynlearn[test]'"
    ) from error

__all__ = ["stable_matrices"]


@st.composite
def stable_matrices(
    draw: st.DrawFn,
    min_dimension: int = 2,
    max_dimension: int = 4,
    min_magnitude: float = 0.5,
    max_magnitude: float = 2.0,
    max_condition: float = 4.0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Real d x d matrices A = Q D Q^{-1} whose eigenvalues lie in the closed left half-plane.

    D is block diagonal: real eigenvalues -r and complex pairs r exp(+-i theta) with theta in [pi/2, 0.95 pi]
    (the imaginary axis, pure oscillation, included), magnitudes r in [min_magnitude, max_magnitude]. Q has
    singular values in [1, max_condition], so A can be non-normal but not arbitrarily so. Bounded magnitudes keep
    the error constants of a convergence test away from zero (no vanishing leading term) and from the
    stability limit.
    """
    dimension = draw(st.integers(min_dimension, max_dimension))
    magnitudes = st.floats(min_magnitude, max_magnitude, allow_nan=False)
    blocks: list[torch.Tensor] = []
    remaining = dimension
    while remaining > 0:
        radius = draw(magnitudes)
        if remaining >= 2 and draw(st.booleans()):
            angle = draw(st.floats(math.pi / 2, 0.95 * math.pi))
            real, imaginary = radius * math.cos(angle), radius * math.sin(angle)
            blocks.append(torch.tensor([[real, imaginary], [-imaginary, real]], dtype=torch.float64))
            remaining -= 2
        else:
            blocks.append(torch.tensor([[-radius]], dtype=torch.float64))
            remaining -= 1
    diagonal = torch.block_diag(*blocks)
    seed = draw(st.integers(0, 2**32 - 1))
    generator = torch.Generator().manual_seed(seed)
    left, _ = torch.linalg.qr(torch.randn(dimension, dimension, generator=generator, dtype=torch.float64))
    right, _ = torch.linalg.qr(torch.randn(dimension, dimension, generator=generator, dtype=torch.float64))
    singular = 1 + (max_condition - 1) * torch.rand(dimension, generator=generator, dtype=torch.float64)
    basis = left @ torch.diag(singular) @ right.T
    return (basis @ diagonal @ torch.linalg.inv(basis)).to(dtype)
