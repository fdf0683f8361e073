"""Analysis of learned and numerical dynamics: convergence tests and rate fitting, the convergence study of
learned vector fields (continuous model or discrete map?), operator reconstruction, and the end-to-end
learned-integrator experiment (``run_study``, behind ``dynlearn study``), and the physics-aware autoencoder
experiment (``train_run``, ``evaluate_run``, behind ``dynlearn train autoencoder`` and ``dynlearn evaluate``), and the
same learned-integrator experiment on recorded fields in POD modes (``run_data_study``, behind ``dynlearn study
--data``)."""

from .convergence import ConvergenceResult, convergence_test, round_off_floor
from .data_study import DataStudyRecipe, run_data_study
from .experiment import RECIPES, StudyRecipe, run_study
from .modes import ProperOrthogonalDecomposition
from .physics_aware import AUTOENCODER_RECIPES, AutoencoderRecipe, evaluate_run, train_run
from .rates import ConvergenceRate, fit_convergence_rate
from .reconstruction import (
    LogarithmWarning,
    closed_form_operator,
    closest_stencil,
    least_squares_map,
    logarithm_operator,
    relative_error,
    scheme_operator,
)
from .study import ConvergenceStudy, SchemeEvaluation, convergence_study, study_ladder

__all__ = [
    "AUTOENCODER_RECIPES",
    "AutoencoderRecipe",
    "evaluate_run",
    "train_run",
    "RECIPES",
    "ConvergenceRate",
    "ConvergenceResult",
    "ConvergenceStudy",
    "DataStudyRecipe",
    "LogarithmWarning",
    "ProperOrthogonalDecomposition",
    "SchemeEvaluation",
    "StudyRecipe",
    "closed_form_operator",
    "closest_stencil",
    "convergence_study",
    "convergence_test",
    "fit_convergence_rate",
    "least_squares_map",
    "logarithm_operator",
    "relative_error",
    "round_off_floor",
    "run_data_study",
    "run_study",
    "scheme_operator",
    "study_ladder",
]
