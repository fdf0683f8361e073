"""The SINDy baseline: identified from samples at step dt, its field carries the O(dt^2) error of its finite-difference
derivatives (the coefficient error falls at order 2); the torch field is PySINDy's model; the study judges it."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

pysindy = pytest.importorskip("pysindy")

from dynlearn.fields.sindy import fit_sindy, fit_sindy_irregular  # noqa: E402
from dynlearn.systems import make_system  # noqa: E402

OSCILLATOR = make_system("oscillator", frequency=1.3, damping_ratio=0.1)
START = torch.tensor([1.0, 0.0], dtype=torch.float64)


def _samples(dt: float, span: float = 20.0) -> torch.Tensor:
    return OSCILLATOR.solution(START, torch.arange(round(span / dt) + 1, dtype=torch.float64) * dt)


def test_the_identified_operator_converges_at_the_order_of_the_finite_differences():
    """The damped oscillator (its spiral spans the plane; one undamped orbit would leave the cubic terms
    collinear with the linear ones) with the polynomial library: SINDy keeps exactly the operator's three terms, and
    their error falls as dt^2."""
    truth = OSCILLATOR.matrix
    errors, steps = [], (0.1, 0.05, 0.025, 0.0125)
    for dt in steps:
        field = fit_sindy(_samples(dt), dt, library="polynomial", threshold=0.05)
        assert field.terms == 3  # x' = y, y' = -w^2 x - 2 zeta w y: nothing else
        linear = field.coefficients[:, 1:3]  # the columns of x0 and x1 (after the constant)
        errors.append(float(torch.linalg.matrix_norm(linear - truth) / torch.linalg.matrix_norm(truth)))
    slopes = [math.log(a / b) / math.log(2) for a, b in zip(errors, errors[1:])]
    assert all(abs(s - 2) < 0.25 for s in slopes), (errors, slopes)
    assert errors[-1] < 1e-4


def test_the_torch_field_is_pysindys_model():
    pendulum = make_system("pendulum")
    states = pendulum.solution(torch.tensor([2.0, 0.5], dtype=torch.float64),
                               torch.arange(201, dtype=torch.float64) * 0.05)
    field = fit_sindy(states, 0.05)
    model = pysindy.SINDy(feature_library=pysindy.PolynomialLibrary(degree=3) + pysindy.FourierLibrary(n_frequencies=1),
                          optimizer=pysindy.STLSQ(threshold=0.05))
    model.fit(states.numpy(), t=0.05)
    points = torch.rand(50, 2, dtype=torch.float64) * 4 - 2
    np.testing.assert_allclose(field(None, points).numpy(), model.predict(points.numpy()), rtol=1e-12, atol=1e-12)
    assert field(None, points.reshape(5, 10, 2)).shape == (5, 10, 2) and len(field.equations) == 2
    times = torch.cumsum(torch.full((201,), 0.05, dtype=torch.float64), 0) - 0.05
    irregular = fit_sindy_irregular(states, times)
    torch.testing.assert_close(irregular.coefficients, field.coefficients, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="strictly increasing"):
        fit_sindy_irregular(states, times.flip(0))
    with pytest.raises(ValueError, match="library must be one of"):
        fit_sindy(states, 0.05, library="neural")
    with pytest.raises(ValueError, match="one trajectory"):
        fit_sindy(states[None], 0.05)


def test_the_study_judges_sindy_and_tabulates_it_against_the_sampling_step(tmp_path):
    from dynlearn.analysis.experiments.learned_integrators import LEARNED_INTEGRATOR_RECIPES, run_learned_integrators

    recipe = dataclasses.replace(LEARNED_INTEGRATOR_RECIPES["pendulum"], iterations=50, training_schemes=(("rk4",),),
                                 discrete_baselines=False)
    outcome = run_learned_integrators(recipe, tmp_path, sindy=True, progress=False)
    assert "sindy" in outcome.study.models
    rows = outcome.sindy_steps
    assert [r["sampling_dt"] for r in rows] == pytest.approx([0.4, 0.2, 0.1, 0.05, 0.025, 0.0125])
    fine = [r["final_error"] for r in rows[1:]]  # below 0.2 the error falls as dt^2 (second-order differences)
    slopes = [math.log(a / b) / math.log(2) for a, b in zip(fine, fine[1:])]
    assert all(1.7 < s < 2.4 for s in slopes), slopes
    assert "## SINDy against the sampling step" in (tmp_path / "report.md").read_text()
