"""The learned-integrator experiment, end to end: data, training inside schemes, convergence study, swap,
operator reconstruction, report. This is what ``dynlearn study SYSTEM`` runs.

Default recipes (``LEARNED_INTEGRATOR_RECIPES``): training data is ONE long exact trajectory (20 time units at
dt_train = 0.1,
200 one-step pairs) from the initial state that is then evaluated on [0, 2]: the question is whether the
learned field is the vector field along that orbit, not how it generalises to other orbits. The pendulum
starts at theta0 = 3 pi / 4 at rest (g = 9.81, L = 1). G is a 2-50-2 tanh MLP trained, one-step loss, in
float64 with Adam (1e-2 decaying to 1e-5) inside euler, midpoint, rk4, and midpoint + rk4 (the sum of both
losses on the same G). For the linear systems (oscillator, wave) linear models Lambda join the study, fitted
in closed form (the exact minimiser of the one-step loss inside one scheme: R(dt Lambda) = the data's
least-squares map), and the reconstruction table compares, for euler, backward Euler, the trapezoid rule,
midpoint and rk4, the operator so obtained with the truth and (for small systems) with gradient training
inside the scheme. The wave recipe uses 16 nodes and dt = 0.01 (dt times the highest grid frequency about
0.45, far from the Nyquist-type bound pi).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from dynlearn._files import atomic_write
from dynlearn._checks import as_flag, as_integer, as_learning_rate, as_positive_number, as_seeds, steps_in
from dynlearn.datasets.sampling import IrregularSampling
from dynlearn.integration.rollout import rollout, time_grid
from dynlearn.integration.tableaus import get_tableau
from dynlearn.fields.models import (MLP, DiscreteMap, LinearVectorField, NeuralODE, NeuralVectorField, SkipMap,
                                    TimeDependentVectorField, iterate_map)
from dynlearn.integration.stability import stability_matrix
from dynlearn.systems import make_system
from dynlearn.systems.base import System
from dynlearn.fields.training import TrainingSettings, TrainingHistory, embedded_loss, map_loss, train

from dynlearn.analysis.reconstruction import (closest_stencil, least_squares_map, logarithm_operator, relative_error,
                                              scheme_operator)
from dynlearn.analysis.rates import fit_power_law
from dynlearn.analysis.study import ConvergenceStudy, convergence_study

__all__ = ["LearnedIntegratorRecipe", "LEARNED_INTEGRATOR_RECIPES", "DEFAULT_SYSTEM", "LearnedIntegratorOutcome",
           "run_learned_integrators", "markdown_reconstruction"]


#: what the study can learn: an MLP field inside schemes, a linear field, a neural ODE (adaptive solver), and the
#: SINDy baseline (PySINDy: finite-difference derivatives and sparse regression, no scheme at all)
NETWORK_KINDS = ("mlp", "linear", "neural-ode", "sindy")
#: the sampling steps, as multiples of dt_train, at which the SINDy baseline is refitted to see its dependence on dt
SINDY_STEP_FACTORS = (4.0, 2.0, 1.0, 0.5, 0.25, 0.125)


@dataclasses.dataclass(frozen=True)
class LearnedIntegratorRecipe:
    """Everything that defines one run of the experiment (see the module docstring for the defaults)."""

    system: str
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    initial_state: tuple[float, ...] | None = None  # None: the system's configured data (the wave's f, g)
    training_dt: float = 0.1
    training_time: float = 20.0
    t_final: float = 2.0
    training_schemes: tuple[tuple[str, ...], ...] = (("euler",), ("midpoint",), ("rk4",), ("midpoint", "rk4"))
    evaluation_schemes: tuple[str, ...] = ("euler", "midpoint", "rk4")
    networks: tuple[str, ...] = ("mlp",)  # "mlp", "linear" (for linear systems), "neural-ode", "sindy"
    discrete_baselines: bool = True  # also fit the direct map N(x) and the skip map x + dt N(x)
    linear_schemes: tuple[str, ...] = ()  # schemes the linear operator is reconstructed for
    width: int = 50
    depth: int = 1
    iterations: int = 8000
    learning_rate: float = 1e-2
    final_learning_rate: float = 1e-5
    #: how the training trajectory is sampled: "uniform" (every dt_train), or an irregular kind of
    #: dynlearn.datasets.sampling ("random_steps": steps uniform in dt_train (1 +- sampling_fraction), "jittered",
    #: "gaps", "poisson"); each training pair then has its own step, and the models train with it
    sampling: str = "uniform"
    sampling_fraction: float = 0.5
    sampling_seed: int = 0
    #: for a non-autonomous system (the double gyre): the periods (time units) of the time features
    #: sin(2 pi t / P), cos(2 pi t / P) of G(t, x) (dynlearn.fields.TimeDependentVectorField); empty: t itself
    time_periods: tuple[float, ...] = ()
    #: generalisation: (label, state) pairs, held-out initial states the convergence test is run from as well
    #: (e.g. one inside the training orbit's range and one outside it); the report adds finer times (errors at
    #: dt_train / 2^k) and longer times (the training horizon doubled) for every model
    held_out_states: tuple[tuple[str, tuple[float, ...]], ...] = ()
    #: more training data: the trajectories from these states over the same times join the one from
    #: initial_state (which stays where the convergence test starts); none: one orbit, the original study
    training_states: tuple[tuple[float, ...], ...] = ()

    def __post_init__(self) -> None:
        """Every value checked before any work: a bad one fails here with one line."""
        for name in ("training_dt", "training_time", "t_final"):
            as_positive_number(name, getattr(self, name))
        for name in ("learning_rate", "final_learning_rate"):
            as_learning_rate(name, getattr(self, name))
        steps_in(self.training_time, self.training_dt, interval_name="training_time", dt_name="training_dt")
        for name in ("width", "depth", "iterations"):
            as_integer(name, getattr(self, name))
        object.__setattr__(self, "discrete_baselines", as_flag("discrete_baselines", self.discrete_baselines))
        if not self.training_schemes or any(not schemes for schemes in self.training_schemes):
            raise ValueError(f"training_schemes must hold at least one non-empty group of schemes, got "
                             f"{self.training_schemes!r}")
        if not self.evaluation_schemes:
            raise ValueError("evaluation_schemes must name at least one scheme")
        for scheme in {s for group in self.training_schemes for s in group} | set(self.evaluation_schemes):
            get_tableau(scheme)  # an unknown name fails here, with the nearest known one
        unknown = set(self.networks) - set(NETWORK_KINDS)
        if unknown or not self.networks:
            raise ValueError(f"networks must be some of {', '.join(map(repr, NETWORK_KINDS))}, got {self.networks!r}")
        for state in self.training_states:
            if not all(math.isfinite(float(v)) for v in state):
                raise ValueError(f"training_states must hold states of finite numbers, got {state!r}")
        for label, state in self.held_out_states:
            if not isinstance(label, str) or not all(math.isfinite(float(v)) for v in state):
                raise ValueError(f"held_out_states must be (label, state of finite numbers) pairs, got {label!r}, "
                                 f"{state!r}")
        if self.sampling != "uniform":
            self.irregular_sampling()  # a bad kind, fraction or seed fails here
            if "neural-ode" in self.networks:
                raise ValueError("the neural ODE trains over one interval for every pair; it cannot take irregular "
                                 "sampling (sampling must be 'uniform' with networks 'neural-ode')")

    def irregular_sampling(self) -> "IrregularSampling | None":
        """The training data's irregular sampling, or None on the uniform grid."""
        if self.sampling == "uniform":
            return None
        return IrregularSampling(self.sampling, 0.0 if self.sampling == "poisson" else self.sampling_fraction,
                                 self.sampling_seed)


_LINEAR_SCHEMES = ("euler", "backward_euler", "trapezoid", "midpoint", "rk4")

#: The recipe of ``dynlearn study SYSTEM`` for each system it knows: the system's parameters, training state,
#: held-out states, step, schemes, budget and evaluation ladder.
LEARNED_INTEGRATOR_RECIPES: dict[str, LearnedIntegratorRecipe] = {
    # held out: a smaller swing, inside the training orbit (theta0 = pi / 2), and a larger one outside it (160 degrees)
    "pendulum": LearnedIntegratorRecipe("pendulum", {"gravity": 9.81, "length": 1.0}, (3 * math.pi / 4, 0.0),
                                        held_out_states=(("inside", (math.pi / 2, 0.0)),
                                                         ("outside", (8 * math.pi / 9, 0.0)))),
    "pendulum-xy": LearnedIntegratorRecipe(
        "pendulum-xy", {"gravity": 9.81, "length": 1.0},
        (math.sin(3 * math.pi / 4), -math.cos(3 * math.pi / 4), 0.0, 0.0),
    ),
    "oscillator": LearnedIntegratorRecipe(
        "oscillator", {"frequency": 1.0, "damping_ratio": 0.0}, (1.0, 0.0), networks=("mlp", "linear"),
        linear_schemes=_LINEAR_SCHEMES,
    ),
    # the textbook parameters (alpha = 2/3, beta = 4/3, gamma = delta = 1; period 7.85 from this state):
    # 40 time units of training data, about 5 orbits, evaluated over 5 time units
    "lotka-volterra": LearnedIntegratorRecipe(
        "lotka-volterra", {"alpha": 2 / 3, "beta": 4 / 3, "gamma": 1.0, "delta": 1.0}, (1.5, 0.5),
        training_time=40.0, t_final=5.0, held_out_states=(("inside", (1.2, 0.5)), ("outside", (2.0, 0.5))),
    ),
    # tracer paths in the double gyre (A = 0.1, epsilon = 0.25, omega = 2 pi / 10): G(t, x) with the forcing's period
    # as its time feature, trained on 40 time units (four forcing periods) of one path, evaluated over 10
    "double-gyre": LearnedIntegratorRecipe(
        "double-gyre", {"amplitude": 0.1, "epsilon": 0.25, "omega": 2 * math.pi / 10}, (0.6, 0.3),
        training_time=40.0, t_final=10.0, time_periods=(10.0,),
    ),
    "wave": LearnedIntegratorRecipe(
        "wave", {"nodes": 16, "n_modes": 400, "stencil_order": 6}, None, training_time=2.0, networks=("linear",),
        linear_schemes=_LINEAR_SCHEMES, training_dt=0.01, t_final=1.0,
    ),
}


@dataclasses.dataclass
class LearnedIntegratorOutcome:
    recipe: LearnedIntegratorRecipe
    study: ConvergenceStudy
    histories: dict[str, TrainingHistory]
    reconstruction: list[dict[str, Any]]
    baselines: list[dict[str, Any]]
    seconds: float
    files: list[Path]
    #: the SINDy baseline refitted at dt_train x SINDY_STEP_FACTORS: its error at T against the sampling step
    sindy_steps: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: generalisation: "held_out" (label -> the convergence study from that state), "finer" (model -> errors at
    #: dt_train / 2^k over the error at dt_train, in its home scheme), "longer" (model -> errors over twice the
    #: training horizon at dt_train)
    generalisation: dict[str, Any] = dataclasses.field(default_factory=dict)

    def summary(self) -> str:
        return self.study.swap_table()


def _trajectory(system: System, initial: torch.Tensor | None, times: torch.Tensor) -> torch.Tensor:
    """The exact trajectory ``(n_times, *state)`` from ``initial`` (or the system's configured data); for a system
    with no closed form, its tight numerical reference (dopri5 at rtol = atol = 1e-12)."""
    if not system.has_solution:
        if initial is None:
            raise ValueError(f"{system.name} has no closed-form solution: its recipe must give an initial_state")
        return system.numerical_solution(initial, times)
    generator = torch.Generator().manual_seed(0)
    given = None if initial is None else initial.unsqueeze(0)
    return system.analytical_trajectories(times, given, 1, generator)[1][0]


def _sindy_against_step(system: System, recipe: "LearnedIntegratorRecipe", initial: torch.Tensor | None,
                        x0: torch.Tensor) -> list[dict[str, Any]]:
    """SINDy refitted from the same span of data sampled at dt_train x each factor of SINDY_STEP_FACTORS: its error
    at T (RK4 at dt_train / 64, far below its own error) and RMS over the trajectory, against the sampling step."""
    from dynlearn.fields.sindy import check_library_size, fit_sindy

    fine = recipe.training_dt / 64
    n_fine = round(recipe.t_final / fine)
    exact = _trajectory(system, initial, time_grid(0.0, fine, n_fine))
    rows = []
    for factor in SINDY_STEP_FACTORS:
        dt = recipe.training_dt * factor
        n = round(recipe.training_time / dt)
        if n < 8 or abs(n * dt - recipe.training_time) > 1e-9 * recipe.training_time:
            continue
        try:
            check_library_size(x0.numel(), (n + 1) * (1 + len(recipe.training_states)))
        except ValueError:  # too few samples at this step to determine the library: no row
            continue
        grid = time_grid(0.0, dt, n)
        samples = [_trajectory(system, initial, grid).reshape(n + 1, -1)] + [
            _trajectory(system, torch.tensor(state, dtype=torch.float64).reshape(x0.shape), grid).reshape(n + 1, -1)
            for state in recipe.training_states]
        field = fit_sindy(samples, dt)
        with torch.no_grad():
            predicted = rollout(field, x0, 0.0, fine, n_fine, "rk4", allow_nonfinite=True)
        difference = torch.linalg.vector_norm((predicted - exact).reshape(n_fine + 1, -1), dim=1)
        rows.append({"sampling_dt": dt, "final_error": float(difference[-1]),
                     "rms_error": float(torch.sqrt(torch.mean(difference[1:] ** 2))), "terms": field.terms})
    return rows


#: the finer steps of the generalisation table, dt_train / 2^k
FINER_POWERS = (2, 4)


def _home_scheme(study: ConvergenceStudy, trained_in: dict[str, tuple[str, ...]], model: str) -> str:
    """The training scheme of highest order (the highest-order evaluation scheme for a model trained in none)."""
    schemes = [get_tableau(s).name for s in trained_in.get(model, ())] or list(study.schemes)
    return max(schemes, key=lambda s: get_tableau(s).order)


def _generalise(system: System, recipe: "LearnedIntegratorRecipe", fields: dict[str, Any],
                trained_in: dict[str, tuple[str, ...]], study: ConvergenceStudy, x0: torch.Tensor) -> dict[str, Any]:
    """The three generalisation measures of every model (see LearnedIntegratorOutcome.generalisation)."""
    held_out = {}
    for label, state in recipe.held_out_states:
        start = torch.tensor(state, dtype=torch.float64).reshape(x0.shape)
        held_out[label] = {"state": list(state), "study": convergence_study(
            fields, lambda times, start=start: _trajectory(system, start, times), start,
            training_dt=recipe.training_dt, t_final=recipe.t_final, schemes=recipe.evaluation_schemes,
            training_schemes=trained_in, system=recipe.system)}
    finer = {}
    for model in study.models:
        evaluation = study.evaluation(model, _home_scheme(study, trained_in, model))
        at = {round(math.log2(recipe.training_dt / dt)): error for dt, error in zip(study.dts, evaluation.rms_errors)}
        finer[model] = {f"dt_train/{2**k}": at[k] / at[0] if at.get(0) else math.nan for k in FINER_POWERS if k in at}
    horizon = 2 * recipe.training_time
    n_long = round(horizon / recipe.training_dt)
    times = time_grid(0.0, recipe.training_dt, n_long)
    exact = _trajectory(system, None if recipe.initial_state is None else x0, times).reshape(n_long + 1, -1)
    size = float(torch.sqrt(torch.mean(torch.linalg.vector_norm(exact, dim=1) ** 2)))
    longer = {}
    for model, field in fields.items():
        with torch.no_grad():
            predicted = rollout(field, x0, 0.0, recipe.training_dt, n_long, _home_scheme(study, trained_in, model),
                                allow_nonfinite=True).reshape(n_long + 1, -1)
        difference = torch.linalg.vector_norm(predicted - exact, dim=1)
        longer[model] = {"horizon": horizon, "relative_rms_error": float(torch.sqrt(torch.mean(difference**2))) / size,
                         "relative_final_error": float(difference[-1]) / size}
    return {"held_out": held_out, "finer": finer, "longer": longer}


def markdown_generalisation(outcome: "LearnedIntegratorOutcome") -> str:
    """The generalisation table: per model, its verdict from the training state and from each held-out state, its
    error at dt_train / 4 and / 16 over that at dt_train (home scheme), and its RMS error over twice the horizon."""
    general, study, recipe = outcome.generalisation, outcome.study, outcome.recipe
    held = general.get("held_out", {})
    powers = [f"dt_train/{2**k}" for k in FINER_POWERS]
    header = ["model", "verdict from the training state"]
    header += [f"from {label} {tuple(round(v, 3) for v in entry['state'])}" for label, entry in held.items()]
    header += [f"RMS error at {p} / at dt_train" for p in powers]
    header += [f"RMS error to t = {2 * recipe.training_time:g} (x2 the training horizon), at dt_train"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]

    def verdict(one: ConvergenceStudy, model: str) -> str:
        kind = one.model_kind(model)
        home = one.evaluation(model, _home_scheme(one, one.training_schemes, model))
        return f"{kind} ({_percent(home.relative_plateau)})"

    for model in study.models:
        cells = [model, verdict(study, model)]
        cells += [verdict(entry["study"], model) for entry in held.values()]
        cells += [f"{general['finer'][model].get(p, math.nan):.3g}" for p in powers]
        cells += [_percent(general["longer"][model]["relative_rms_error"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.2g} %" if math.isfinite(fraction) else "n/a"


def markdown_sindy_steps(rows: list[dict[str, Any]]) -> str:
    """The SINDy table: error against the sampling step, with the slope of log error against log dt."""
    lines = ["| sampling dt | error at T | RMS error | terms |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['sampling_dt']:g} | {r['final_error']:.3e} | {r['rms_error']:.3e} | {r['terms']} |" for r in rows]
    finite = [r for r in rows if math.isfinite(r["final_error"]) and r["final_error"] > 0]
    if len(finite) >= 3:
        slope = fit_power_law([r["sampling_dt"] for r in finite], [r["final_error"] for r in finite])
        low, high = slope.confidence_interval
        lines += ["", f"Slope of log error against log dt: {slope.slope:.2f} [{low:.2f}, {high:.2f}] (95 %; SINDy's "
                      f"derivative estimate, second-order finite differences, is what ties its field to the step)."]
    return "\n".join(lines)


def _linear_loss(operator: LinearVectorField, starts: torch.Tensor, successors: torch.Tensor, dt: float, scheme: str):
    def loss(index: torch.Tensor | None) -> torch.Tensor:
        predicted = starts @ stability_matrix(operator.operator, dt, scheme).T
        return torch.mean((predicted - successors) ** 2)

    return loss


#: the system ``dynlearn study`` runs when none is named
DEFAULT_SYSTEM = "pendulum"


def run_learned_integrators(
    recipe: LearnedIntegratorRecipe | str = DEFAULT_SYSTEM,
    output: str | Path | None = None,
    *,
    seeds: Sequence[int] = (0,),
    iterations: int | None = None,
    neural_ode: bool = False,
    sindy: bool = False,
    device: str | torch.device = "cpu",
    compile: bool = False,
    progress: bool = True,
) -> LearnedIntegratorOutcome:
    """Run the experiment of ``recipe`` (or the default recipe of a system name) and, when ``output`` is
    given, write ``report.md``, ``results.json`` and ``convergence_grid.png`` there.

    ``seeds`` trains every network once per seed; ``iterations`` overrides the recipe's; ``neural_ode`` adds
    a G trained through torchdiffeq's adaptive dopri5 (the continuous reference; about 10x the cost of an
    RK4-embedded one); ``sindy`` adds the SINDy baseline (PySINDy, the same training data, its default
    finite-difference derivatives; refitted at other sampling steps to show how its error depends on the step);
    ``device`` is where training runs (evaluation runs on the CPU in float64 against the exact solution);
    ``compile`` trains the fields with each iteration compiled as one graph (``TrainingSettings.compile``; not the
    neural ODE, whose adaptive solver cannot be): the same results to round-off, faster after a compile of 7-20 s
    per model (under 1 s once Inductor's cache holds the graph; docs: performance)."""
    began = time.perf_counter()
    seeds = as_seeds("seeds", seeds)
    for name, flag in (("neural_ode", neural_ode), ("sindy", sindy), ("compile", compile), ("progress", progress)):
        as_flag(name, flag)
    if isinstance(recipe, str):
        if recipe not in LEARNED_INTEGRATOR_RECIPES:
            raise ValueError(f"no study recipe for {recipe!r}; known: {', '.join(LEARNED_INTEGRATOR_RECIPES)}")
        recipe = LEARNED_INTEGRATOR_RECIPES[recipe]
    if iterations is not None:
        recipe = dataclasses.replace(recipe, iterations=iterations)
    if neural_ode and "neural-ode" not in recipe.networks:
        recipe = dataclasses.replace(recipe, networks=(*recipe.networks, "neural-ode"))
    if sindy and "sindy" not in recipe.networks:
        recipe = dataclasses.replace(recipe, networks=(*recipe.networks, "sindy"))
    system = make_system(recipe.system, **recipe.parameters)
    initial = None if recipe.initial_state is None else torch.tensor(recipe.initial_state, dtype=torch.float64)
    n_train = round(recipe.training_time / recipe.training_dt)
    irregular = recipe.irregular_sampling()
    if irregular is None:
        training_times = time_grid(0.0, recipe.training_dt, n_train)
    else:  # one trajectory at irregular times: its present samples, each pair its own step
        drawn = irregular.draw(1, recipe.training_dt, recipe.training_time)
        drawn = drawn if drawn.ndim == 1 else drawn[0]
        keep = torch.isfinite(drawn) & ~irregular.missing(1, drawn.shape[0])[0]
        training_times = drawn[keep]
    training = _trajectory(system, initial, training_times)
    x0 = training[0]
    dimension = x0.shape[-1]
    # the training trajectories: the one from initial_state, and one from each of training_states, same times
    trajectories = [training] + [_trajectory(system, torch.tensor(state, dtype=torch.float64).reshape(x0.shape),
                                             training_times) for state in recipe.training_states]
    starts = torch.cat([trajectory[:-1] for trajectory in trajectories])
    successors = torch.cat([trajectory[1:] for trajectory in trajectories])
    # the step of each pair: dt_train on the grid, each pair's own on irregular data
    pair_steps = recipe.training_dt if irregular is None else training_times.diff().repeat(len(trajectories))
    autonomous = system.autonomous
    if "sindy" in recipe.networks:  # before any training: SINDy's library must be determined by the data
        from dynlearn.fields.sindy import check_library_size

        check_library_size(dimension, sum(trajectory.shape[0] for trajectory in trajectories))
    if not autonomous:  # G(t, x), trained from each pair's own start time
        refused = {"linear", "neural-ode", "sindy"} & set(recipe.networks)
        if refused:
            raise ValueError(f"{system.name} is non-autonomous: networks {sorted(refused)} are autonomous fields; "
                             f"use 'mlp' (a TimeDependentVectorField)")

    fields: dict[str, Any] = {"true field": system}
    trained_in: dict[str, tuple[str, ...]] = {}
    histories: dict[str, TrainingHistory] = {}
    device = torch.device(device)
    on_device = starts.to(device), successors.to(device)
    steps_on_device = pair_steps if irregular is None else pair_steps.to(device)
    start_times = None if autonomous else training_times[:-1].repeat(len(trajectories)).to(device)
    exact_map = least_squares_map(starts, successors)  # the data's one-step map (exact data: exp(dt Lambda))

    def fit(name: str, module: torch.nn.Module, loss, seed: int, compiled: bool = compile) -> None:
        settings = TrainingSettings(
            iterations=recipe.iterations, learning_rate=recipe.learning_rate,
            final_learning_rate=recipe.final_learning_rate, patience=max(1000, recipe.iterations // 3),
            min_improvement=1e-4, seed=seed, progress=progress, description=name, compile=compiled,
        )
        histories[name] = train(module, loss, starts.shape[0], settings)
        module.to("cpu").requires_grad_(False)

    def network(seed: int) -> torch.nn.Module:
        torch.manual_seed(seed)
        return MLP(dimension, dimension, recipe.width, recipe.depth).to(device, torch.float64)

    def vector_field(seed: int) -> torch.nn.Module:
        """G(x), or G(t, x) with the recipe's time features for a non-autonomous system."""
        if autonomous:
            return NeuralVectorField(network(seed))
        features = 2 * len(recipe.time_periods) if recipe.time_periods else 1
        torch.manual_seed(seed)
        return TimeDependentVectorField(MLP(dimension + features, dimension, recipe.width, recipe.depth).to(
            device, torch.float64), recipe.time_periods)

    suffix = (lambda seed: f" seed {seed}") if len(seeds) > 1 else (lambda seed: "")
    for schemes in recipe.training_schemes:
        label = "+".join(schemes)
        if "linear" in recipe.networks and irregular is not None:
            # no closed form with a step per pair: gradient training inside the scheme(s), as for the networks
            name = f"linear {label}"
            field = LinearVectorField(dimension).to(device)
            fit(name, field, embedded_loss(field, on_device[0], on_device[1][:, None], steps_on_device, schemes), 0)
            fields[name], trained_in[name] = field, schemes
        elif "linear" in recipe.networks and len(schemes) == 1:
            # the exact minimiser of the one-step loss inside the scheme, R(dt Lambda) = Omega_data: no training
            # (several schemes together have no closed form, and a linear fit needs no seeds)
            fields[f"linear {label}"] = LinearVectorField(dimension, scheme_operator(exact_map, recipe.training_dt,
                                                                                     schemes[0]))
            fields[f"linear {label}"].requires_grad_(False)
            trained_in[f"linear {label}"] = schemes
        if "mlp" in recipe.networks:
            for seed in seeds:
                name = f"mlp {label}{suffix(seed)}"
                field = vector_field(seed)
                loss = embedded_loss(field, on_device[0], on_device[1][:, None], steps_on_device, schemes,
                                     start_times)
                fit(name, field, loss, seed)
                fields[name], trained_in[name] = field, schemes
    if "neural-ode" in recipe.networks:  # the continuous reference: G trained through an adaptive solver
        for seed in seeds:
            name = f"neural ode{suffix(seed)}"
            field = NeuralVectorField(network(seed))
            solver = NeuralODE(field, rtol=1e-7, atol=1e-9)
            interval = torch.tensor([0.0, recipe.training_dt], dtype=torch.float64, device=device)

            def ode_loss(index, solver=solver, interval=interval):
                return torch.mean((solver(on_device[0], interval)[-1] - on_device[1]) ** 2)

            fit(name, field, ode_loss, seed, compiled=False)  # adaptive steps: no graph of fixed shape
            fields[name] = field

    sindy_steps: list[dict[str, Any]] = []
    if "sindy" in recipe.networks:  # identified from the same samples (irregular ones with their own times)
        from dynlearn.fields.sindy import fit_sindy, fit_sindy_irregular

        flat = [trajectory.reshape(trajectory.shape[0], -1) for trajectory in trajectories]
        fields["sindy"] = fit_sindy(flat, recipe.training_dt) if irregular is None else fit_sindy_irregular(
            flat, training_times)
        sindy_steps = _sindy_against_step(system, recipe, initial, x0) if irregular is None else []

    baselines = []
    # maps with no vector field, judged at dt_train only: one step and no time, so uniform autonomous data only
    if recipe.discrete_baselines and irregular is None and autonomous:
        n_eval = round(recipe.t_final / recipe.training_dt)
        exact = _trajectory(system, initial, time_grid(0.0, recipe.training_dt, n_eval))
        for label, make in (("direct map x -> N(x)", lambda net: DiscreteMap(net)),
                            (f"skip map x -> x + {recipe.training_dt:g} N(x) (ResNet)",
                             lambda net: SkipMap(net, recipe.training_dt))):
            model = make(network(seeds[0]))
            fit(label, model, map_loss(model, on_device[0], on_device[1][:, None]), seeds[0])
            with torch.no_grad():
                predicted = iterate_map(model, x0, n_eval)
            difference = torch.linalg.vector_norm((predicted - exact)[1:].reshape(n_eval, -1), dim=1)
            baselines.append({"model": label, "rms_error": float(torch.sqrt(torch.mean(difference**2))),
                              "final_error": float(difference[-1])})

    reference_initial = initial

    def reference(times: torch.Tensor) -> torch.Tensor:
        return _trajectory(system, reference_initial, times)

    study = convergence_study(
        fields, reference, x0, training_dt=recipe.training_dt, t_final=recipe.t_final,
        schemes=recipe.evaluation_schemes, training_schemes=trained_in, system=recipe.system,
    )
    # the reconstruction inverts one map of one step: uniform data only
    reconstruction = (_reconstruct(system, recipe, starts, successors, progress)
                      if recipe.linear_schemes and irregular is None and autonomous else [])
    generalisation = _generalise(system, recipe, fields, trained_in, study, x0)
    outcome = LearnedIntegratorOutcome(recipe, study, histories, reconstruction, baselines,
                                       time.perf_counter() - began, [], sindy_steps, generalisation)
    if output is not None:
        outcome.files = _write_report(outcome, Path(output))
    return outcome


def _reconstruct(system: System, recipe: LearnedIntegratorRecipe, starts, successors,
                 progress: bool) -> list[dict[str, Any]]:
    """Per linear scheme: Lambda from inverting R on the data's least-squares map (what a linear model trained
    inside the scheme converges to), checked against gradient training inside the scheme for small systems,
    and from the matrix logarithm; errors against the true operator (the wave: its order-p method of lines)."""
    dt = recipe.training_dt
    truth = system.matrix if hasattr(system, "matrix") else system.operator_matrix()
    data_map = least_squares_map(starts, successors)
    rows = []
    logarithm = logarithm_operator(data_map, dt)
    row = {"scheme": "matrix logarithm", "relative_error": relative_error(logarithm, truth),
           "operator": logarithm.tolist() if truth.shape[0] <= 4 else None}
    if system.name == "wave":
        row["stencil"] = closest_stencil(logarithm, system)
    rows.append(row)
    for scheme in recipe.linear_schemes:
        inverted = scheme_operator(data_map, dt, scheme)
        row = {
            "scheme": scheme,
            "relative_error": relative_error(inverted, truth),
            "diagonal_mean": float(inverted.diagonal().mean()),
            "operator": inverted.tolist() if truth.shape[0] <= 4 else None,
        }
        if truth.shape[0] <= 4:  # gradient training inside the scheme must land on the same operator
            field = LinearVectorField(truth.shape[0])
            settings = TrainingSettings(iterations=max(recipe.iterations, 4000), learning_rate=recipe.learning_rate,
                                        final_learning_rate=1e-6, patience=max(recipe.iterations, 4000),
                                        min_improvement=0.0, progress=progress,
                                        description=f"linear operator in {scheme}")
            train(field, _linear_loss(field, starts, successors, dt, scheme), starts.shape[0], settings)
            row["trained_vs_inverted"] = relative_error(field.operator.detach(), inverted)
        if system.name == "wave":
            row["stencil"] = closest_stencil(inverted, system)
        rows.append(row)
    return rows


def markdown_reconstruction(rows: list[dict[str, Any]], dt: float) -> str:
    """The operator-reconstruction rows of a linear study (one dict per model and scheme) as a Markdown section:
    per model and scheme, the relative Frobenius error of the learned operator against the true one."""
    lines = [
        f"Linear operators a model learns inside each scheme from the data's one-step map (least squares over the "
        f"exact trajectory), dt = {dt:g}; relative errors in Frobenius norm against the true operator:",
        "",
        "| scheme | ||Lambda_scheme - Lambda|| / ||Lambda|| | gradient-trained vs inverted | mean diagonal | closest stencil (distance) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        stencil = row.get("stencil")
        closest = "" if not stencil else (
            f"order {stencil['closest_order']} ({stencil['distances'][stencil['closest_order']]:.2g})")
        trained = row.get("trained_vs_inverted")
        lines.append(
            f"| {row['scheme']} | {row['relative_error']:.3e} | {'-' if trained is None else f'{trained:.1e}'} | "
            f"{row.get('diagonal_mean', float('nan')):.4g} | {closest} |"
        )
    return "\n".join(lines)


def _write_report(outcome: LearnedIntegratorOutcome, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recipe, study = outcome.recipe, outcome.study
    folder.mkdir(parents=True, exist_ok=True)
    figure = study.plot_grid()
    grid = atomic_write(folder / "convergence_grid.png", lambda p: figure.savefig(p, format="png", dpi=110))
    plt.close(figure)
    training_lines = [
        f"| {name} | {h.iterations} | {h.best_loss:.3e} | {h.seconds:.1f} |" for name, h in outcome.histories.items()
    ]
    irregular = recipe.irregular_sampling()
    sampled = (f"at dt_train = {recipe.training_dt:g}" if irregular is None else
               f"sampled irregularly around dt_train = {recipe.training_dt:g} "
               f"({irregular.describe(recipe.training_dt)}, "
               f"seed {irregular.seed}; every pair trained with its own step; no discrete baselines or closed-form "
               f"reconstruction, which need one step)")
    sections = [
        f"# Learned integrators: {recipe.system}",
        "",
        f"Parameters {recipe.parameters}; training data: one exact trajectory of {recipe.training_time:g} time units "
        f"{sampled} from {list(recipe.initial_state) if recipe.initial_state else 'the configured data'}; "
        f"evaluation from the same state to T = {recipe.t_final:g}, dt from {min(study.dts):.4g} to {max(study.dts):.4g}. "
        f"Run time {outcome.seconds:.0f} s.",
        "",
        *study.markdown_sections(),
        "",
        "Judged on the RMS error over the trajectory. Plateau: geometric mean of the errors at the two finest dt. "
        "Rate: fitted for dt <= dt_train on the asymptotic range of the errors above the plateau (local slopes "
        "within 0.15 of each other). An error is significant above 1% of the trajectory's RMS size. Verdicts: "
        "err(dt_train)/plateau < 0.5 with a significant plateau is discrete (a smaller rise is the scheme's own "
        "trained-in error); converging (at its plateau for dt <= dt_train, at a rate >= 0.5, or falling step by step "
        "by 2x or more) to a plateau that is not significant is continuous and faithful, to a significant one "
        "continuous but another system.",
        "",
        "![convergence grid](convergence_grid.png)",
        "",
        "## Training",
        "",
        "| model | iterations | best loss | seconds |",
        "| --- | --- | --- | --- |",
        *training_lines,
    ]
    if outcome.baselines:
        sections += [
            "", "## Discrete baselines (no vector field: evaluated at dt_train only)", "",
            "| model | RMS error at dt_train | error at T |", "| --- | --- | --- |",
            *[f"| {b['model']} | {b['rms_error']:.3e} | {b['final_error']:.3e} |" for b in outcome.baselines],
            "",
            "Compare with the RMS errors at dt_train of the embedded models (results.json): a discrete map can be as "
            "good there, and has nothing to say at any other step.",
        ]
    if outcome.generalisation:
        sections += ["", "## Generalisation", "",
                     "Held-out initial states (the convergence test run from each: the kind of verdict and the RMS "
                     "plateau against the state's size, home scheme); finer times (the RMS error at dt_train / 4 and "
                     "/ 16 over that at dt_train, home scheme: a continuous model keeps it, a map fitted to dt_train "
                     "cannot interpolate and rises to its plateau); longer times (rolled out at dt_train, home "
                     "scheme, to twice the training horizon, RMS error over the state's RMS size). The discrete "
                     "baselines have no dt and no vector field to run from other steps.", "",
                     markdown_generalisation(outcome)]
    if outcome.sindy_steps:
        sections += ["", "## SINDy against the sampling step", "",
                     "SINDy (PySINDy: second-order finite differences, polynomials to degree 3 with sin and cos, STLSQ "
                     "threshold 0.05) from the same span of data sampled at each dt, run in RK4 at dt_train / 64:", "",
                     markdown_sindy_steps(outcome.sindy_steps)]
    if outcome.reconstruction:
        sections += ["", "## Operator reconstruction", "", markdown_reconstruction(outcome.reconstruction, recipe.training_dt)]
    report = atomic_write(folder / "report.md", lambda p: p.write_text("\n".join(sections) + "\n"))
    payload = {
        "recipe": dataclasses.asdict(recipe),
        "study": study.to_dict(),
        "training": {name: {"iterations": h.iterations, "best_loss": h.best_loss, "seconds": h.seconds,
                            "stopped_early": h.stopped_early} for name, h in outcome.histories.items()},
        "reconstruction": outcome.reconstruction,
        "discrete_baselines": outcome.baselines,
        "sindy_against_step": outcome.sindy_steps,
        "generalisation": {
            "held_out": {label: {"state": entry["state"], "study": entry["study"].to_dict()}
                         for label, entry in outcome.generalisation.get("held_out", {}).items()},
            "finer": outcome.generalisation.get("finer", {}), "longer": outcome.generalisation.get("longer", {})},
        "seconds": outcome.seconds,
    }
    results = atomic_write(folder / "results.json", lambda p: p.write_text(json.dumps(payload, indent=2, default=float)))
    return [report, results, grid]
