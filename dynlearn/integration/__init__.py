"""The integration engine: exact Butcher tableaus and their registry, the step plan (the one Runge-Kutta stage
loop), fixed-step ``step`` and ``rollout`` (with CUDA-graph replay), the bridge to torchdiffeq's adaptive solvers
(``odeint``), and the linear stability function R(dt Lambda) of a scheme. Its modules::

    tableau.py      ButcherTableau: exact coefficients, checked, order conditions proved with sympy
    tableaus.py     the registry: euler ... dopri5, get_tableau, register_tableau
    step_plan.py    a tableau compiled to one fixed step (StepPlan): used by rollout, CUDA graphs, OdeBlock
    rollout.py      step, rollout, time_grid
    cuda_graphs.py  a whole inference rollout captured once and replayed
    adaptive.py     odeint: torchdiffeq's adaptive methods and adjoint
    stability.py    stability_matrix: R(dt A) for explicit and implicit schemes
"""

from dynlearn.integration.adaptive import ADAPTIVE_METHODS, odeint
from dynlearn.integration.rollout import NonFiniteStateError, VectorField, rollout, step, time_grid
from dynlearn.integration.stability import stability_matrix
from dynlearn.integration.step_plan import StepPlan, step_plan
from dynlearn.integration.tableau import ButcherTableau
from dynlearn.integration.tableaus import available_tableaus, get_tableau, register_tableau

__all__ = ["ADAPTIVE_METHODS", "ButcherTableau", "NonFiniteStateError", "StepPlan", "VectorField", "available_tableaus",
           "get_tableau", "odeint", "register_tableau", "rollout", "stability_matrix", "step", "step_plan", "time_grid"]
