"""Linear stability: what one step of a Runge-Kutta method does to a linear system.

On dx/dt = Lambda x, one step of any Runge-Kutta method (explicit or implicit) is the linear map
x_{k+1} = R(dt Lambda) x_k, where R is the method's stability function. For a tableau (A, b) and a d x d
operator,

    R(dt Lambda) = I + dt (b^T (x) I_d) (I_{sd} - dt A (x) Lambda)^{-1} (1_s (x) Lambda),

(x) the Kronecker product. :func:`stability_matrix` computes it differentiably in torch, so a linear model can
be trained inside implicit schemes too, and its learned operator compared with the closed forms.
"""

from __future__ import annotations

import torch

from dynlearn._checks import as_positive_step
from dynlearn.integration.tableau import ButcherTableau
from dynlearn.integration.tableaus import get_tableau

__all__ = ["stability_matrix"]


def stability_matrix(operator: torch.Tensor, dt: float, scheme: str | ButcherTableau) -> torch.Tensor:
    """R(dt Lambda) for a square ``operator`` Lambda ``(d, d)`` (or a batch ``(*batch, d, d)``), in its dtype
    and on its device; differentiable with respect to Lambda."""
    dt = as_positive_step("dt", dt)
    tableau = get_tableau(scheme)
    if operator.ndim < 2 or operator.shape[-1] != operator.shape[-2]:
        raise ValueError(f"operator must be square (..., d, d), got shape {tuple(operator.shape)}")
    a, b, _ = tableau.as_floats()
    s, d = tableau.stages, operator.shape[-1]
    kwargs = {"dtype": operator.dtype, "device": operator.device}
    a_matrix = torch.tensor(a, **kwargs)
    weights = torch.tensor(b, **kwargs)
    identity = torch.eye(d, **kwargs)
    # A (x) Lambda, batched: entry ((i, p), (j, q)) is a_ij Lambda_pq
    kronecker = (a_matrix[:, None, :, None] * operator[..., None, :, None, :]).reshape(*operator.shape[:-2], s * d, s * d)
    system = torch.eye(s * d, **kwargs) - dt * kronecker
    right = torch.cat([operator] * s, dim=-2)  # 1_s (x) Lambda: (..., s d, d)
    stages = torch.linalg.solve(system, right)  # (..., s d, d)
    combination = (weights[:, None, None] * stages.reshape(*stages.shape[:-2], s, d, d)).sum(-3)
    return identity + dt * combination
