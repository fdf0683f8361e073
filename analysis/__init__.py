"""Instruments for learned and numerical dynamics: rate fitting, convergence tests, the convergence study of
learned vector fields (continuous model or discrete map?), operator reconstruction, POD modes, plots and
hypothesis strategies. Instruments use the core (and numpy, scipy, sympy, matplotlib) only. Its modules::

    rates.py           fit_convergence_rate: the observed order on the ladder's asymptotic range; fit_power_law
    convergence.py     convergence_test: error against dt of every scheme, fitted orders
    study.py           convergence_study: every learned field in every scheme, with a verdict (judge_errors)
    ensemble_convergence.py  ensemble_ladder_errors: the members of an ensemble over a ladder, as one batch
    reconstruction.py  the operator a linear model learned: logarithm_operator, scheme_operator, ...
    modes.py           ProperOrthogonalDecomposition
    robustness.py      a classifier under input perturbations: gaussian_noise, fgsm, projected_gradient_descent
    plots.py           convergence plots
    testing.py         hypothesis strategies (stable_matrices)

The experiments that compose instruments, models and data (the learned-integrator study behind ``dynlearn
study``, the recorded-field study, the autoencoder evaluation, the convergence demonstration) live in
:mod:`dynlearn.analysis.experiments`; importing an instrument loads none of them.
"""

from dynlearn.analysis.convergence import ConvergenceResult, convergence_test, round_off_floor
from dynlearn.analysis.ensemble_convergence import ensemble_ladder_errors
from dynlearn.analysis.modes import ProperOrthogonalDecomposition
from dynlearn.analysis.rates import ConvergenceRate, PowerLawFit, fit_convergence_rate, fit_power_law
from dynlearn.analysis.robustness import accuracy_under_perturbation, fgsm, gaussian_noise, projected_gradient_descent
from dynlearn.analysis.reconstruction import (
    LogarithmWarning,
    closed_form_operator,
    closest_stencil,
    least_squares_map,
    logarithm_operator,
    relative_error,
    scheme_operator,
)
from dynlearn.analysis.study import ConvergenceStudy, SchemeEvaluation, convergence_study, judge_errors, study_ladder

__all__ = [
    "accuracy_under_perturbation",
    "fgsm",
    "gaussian_noise",
    "projected_gradient_descent",
    "ConvergenceRate",
    "ConvergenceResult",
    "ConvergenceStudy",
    "LogarithmWarning",
    "PowerLawFit",
    "ProperOrthogonalDecomposition",
    "SchemeEvaluation",
    "closed_form_operator",
    "closest_stencil",
    "convergence_study",
    "convergence_test",
    "ensemble_ladder_errors",
    "fit_convergence_rate",
    "fit_power_law",
    "judge_errors",
    "least_squares_map",
    "logarithm_operator",
    "relative_error",
    "round_off_floor",
    "scheme_operator",
    "study_ladder",
]
