"""TrainingSettings(compile=True): each iteration (loss, gradient, Adam's step, the best parameters kept) as one
compiled graph. The same training as eager to round-off in float64 (parameters, every loss, where it stops, a member
that fails), one compilation per training whatever the learning rate and step count (a sweep's groups too),
checkpoints that resume in either mode, a clear refusal of a loss that hides a parameter, and an eager fallback
(with a warning) where torch cannot compile the loss whole. Networks are narrow and runs short: the laws do not depend on the size, and the
compile time does."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dynlearn.analysis.experiments.sweep import SweepGrid, run_sweep
from dynlearn.fields import MLP, NeuralVectorField, TrainingSettings, embedded_loss, train
from dynlearn.fields.ensemble import EnsembleMLP, ensemble_embedded_loss
from dynlearn.fields import training
from dynlearn.fields.training import train_ensemble
from dynlearn.integration import rollout, step_plan
from dynlearn.systems import make_system

# the eager fallback would make every equality below hold without compiling anything: here it is an error, except
# where a test asks for it (pytest.warns)
pytestmark = pytest.mark.filterwarnings("error:compile=True. torch.compile cannot take:UserWarning")

PENDULUM = make_system("pendulum", gravity=9.81, length=1.0)
START = torch.tensor([3 * math.pi / 4, 0.0], dtype=torch.float64)


def _pairs(dt: float, time_units: float) -> tuple[torch.Tensor, torch.Tensor]:
    n = round(time_units / dt)
    trajectory = PENDULUM.solution(START, torch.arange(n + 1, dtype=torch.float64) * dt)
    return trajectory[:-1], trajectory[1:]


def _field(seed: int = 0) -> NeuralVectorField:
    torch.manual_seed(seed)
    return NeuralVectorField(MLP(2, 2, 12).to(torch.float64))


def _assert_same_training(eager, compiled) -> None:
    (eager_module, eager_history), (compiled_module, compiled_history) = eager, compiled
    assert compiled_history.iterations == eager_history.iterations
    assert compiled_history.best_iteration == eager_history.best_iteration
    assert compiled_history.stopped_early == eager_history.stopped_early
    torch.testing.assert_close(torch.tensor(compiled_history.losses), torch.tensor(eager_history.losses),
                               rtol=1e-12, atol=0)
    for ours, reference in zip(compiled_module.parameters(), eager_module.parameters()):
        torch.testing.assert_close(ours, reference, rtol=0, atol=1e-12)


@pytest.mark.parametrize("batch_size, irregular", [(16, False), (None, True)])
def test_a_compiled_training_is_the_eager_one_in_float64(batch_size, irregular):
    """Two schemes summed, minibatches or the full batch, one dt or a dt per pair (irregular samples), an early
    stop: the same losses, the same stop, the same best parameters restored; every iteration (its own learning
    rate and step count) runs the one compilation, never the eager fallback."""
    dynamo = pytest.importorskip("torch._dynamo")
    starts, successors = _pairs(0.1, 8.0)
    dt = 0.1 * (1 + 0.2 * torch.rand(starts.shape[0], dtype=torch.float64)) if irregular else 0.1
    runs = []
    for compile in (False, True):
        field = _field()
        loss = embedded_loss(field, starts, successors[:, None], dt, ("midpoint", "rk4"))
        settings = TrainingSettings(iterations=80, batch_size=batch_size, learning_rate=0.05, patience=10,
                                    min_improvement=0.2, progress=False, compile=compile)
        with dynamo.config.patch(recompile_limit=1, fail_on_recompile_limit_hit=True):  # one compilation
            runs.append((field, train(field, loss, starts.shape[0], settings)))
    _assert_same_training(*runs)
    assert runs[1][1].stopped_early and runs[1][1].iterations < 80


def test_a_compiled_ensemble_is_the_eager_one_member_by_member():
    """Members with their own data sizes, steps, batch sizes and early stops, one of them failing at once (NaN
    weights): the same histories, the same failure, the same parameters."""
    pairs = [_pairs(0.2, 8.0), _pairs(0.1, 6.0), _pairs(0.05, 4.0)]
    longest = max(p[0].shape[0] for p in pairs)
    starts = torch.zeros(3, longest, 2, dtype=torch.float64)
    successors = torch.zeros_like(starts)
    for m, (x, y) in enumerate(pairs):
        starts[m, :x.shape[0]], successors[m, :x.shape[0]] = x, y
    counts = [p[0].shape[0] for p in pairs]
    settings = [TrainingSettings(iterations=70, batch_size=16, seed=0, patience=20, progress=False),
                TrainingSettings(iterations=50, batch_size=None, seed=1, progress=False),
                TrainingSettings(iterations=70, batch_size=8, seed=2, progress=False)]
    runs = []
    for compile in (False, True):
        networks = []
        for seed in range(3):
            torch.manual_seed(seed)
            networks.append(MLP(2, 2, 12).to(torch.float64))
        ensemble = EnsembleMLP.from_networks(networks)
        with torch.no_grad():
            ensemble.weights[-1][2].fill_(math.nan)
        loss = ensemble_embedded_loss(ensemble, starts, successors, [0.2, 0.1, 0.05], ("rk4",), counts)
        each = [TrainingSettings(**{**s.__dict__, "compile": compile}) for s in settings]
        runs.append((ensemble, train_ensemble(ensemble, loss, counts, each)))
    (eager, eager_histories), (compiled, compiled_histories) = runs
    for ours, reference in zip(compiled_histories, eager_histories):
        assert (ours.iterations, ours.best_iteration, ours.stopped_early, ours.failure) == \
            (reference.iterations, reference.best_iteration, reference.stopped_early, reference.failure)
        torch.testing.assert_close(torch.tensor(ours.losses), torch.tensor(reference.losses), rtol=1e-12, atol=0)
    assert compiled_histories[2].failure is not None and compiled_histories[0].stopped_early
    for ours, reference in zip(compiled.parameters(), eager.parameters()):
        torch.testing.assert_close(ours, reference, rtol=0, atol=1e-12, equal_nan=True)


def test_a_compiled_checkpoint_resumes_eagerly_to_the_uninterrupted_training(tmp_path, monkeypatch):
    """Adam's state lives in the optimizer either way: a compiled training killed right after its checkpoint at
    iteration 30, resumed eagerly, ends where 60 eager iterations end."""
    starts, successors = _pairs(0.1, 8.0)

    def run(compile: bool, path):  # the float64 test's training (its compiled graph, from Inductor's cache)
        field = _field()
        loss = embedded_loss(field, starts, successors[:, None], 0.1, ("midpoint", "rk4"))
        settings = TrainingSettings(iterations=60, batch_size=16, checkpoint_every=30, progress=False, compile=compile)
        return field, train(field, loss, starts.shape[0], settings, checkpoint=path)

    path = tmp_path / "field.pt"
    save = training._save

    def save_then_die(where, state):
        save(where, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(True, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["losses"].__len__() == 30
    _assert_same_training(run(False, None), run(False, path))


def test_a_loss_that_holds_a_parameter_is_refused_and_one_torch_cannot_compile_trains_eagerly():
    starts, successors = _pairs(0.1, 4.0)
    field = _field()
    weights = list(field.parameters())

    def holding(index):  # the network's weights taken as tensors, not through the module
        hidden = torch.tanh(starts @ weights[0].T + weights[1])
        return (hidden @ weights[2].T + weights[3]).square().mean()

    with pytest.raises(ValueError, match="does not depend on the parameter.*through the module"):
        train(field, holding, starts.shape[0], TrainingSettings(iterations=3, progress=False, compile=True))

    loss = embedded_loss(field, starts, successors[:, None], 0.1, ("rk4",))

    def branching(index):  # a Python decision on a value: no single graph
        value = loss(index)
        return value * 2 if float(value.detach()) > 1e9 else value

    reference = _field()
    reference_loss = embedded_loss(reference, starts, successors[:, None], 0.1, ("rk4",))
    with pytest.warns(UserWarning, match="cannot take this training iteration as one graph"):
        history = train(field, branching, starts.shape[0], TrainingSettings(iterations=15, progress=False,
                                                                            compile=True))
    expected = train(reference, reference_loss, starts.shape[0], TrainingSettings(iterations=15, progress=False))
    assert history.losses == expected.losses


def test_a_compiled_sweep_gives_the_eager_sweep_and_compiles_each_group_once(tmp_path):
    """Two groups (two seeds, one training each) in one process, torch's recompile limit lowered to 1 and made an
    error: every iteration, at its own learning rate and step counts (tensors, not constants), runs its group's one
    compilation (each group its own cache; the second one's graph from Inductor's cache); the cells equal the eager
    sweep's."""
    dynamo = pytest.importorskip("torch._dynamo")
    grid = SweepGrid(training_dts=(0.2,), training_schemes=(("euler",),), seeds=(0, 1), training_times=(4.0,),
                     t_final=0.8, iterations=60, widths=(12,), group_size=1)
    eager = run_sweep(grid, workers=1, show_progress=False)
    with dynamo.config.patch(recompile_limit=1, fail_on_recompile_limit_hit=True):
        compiled = run_sweep(grid, workers=1, compile=True, show_progress=False)
    assert len(compiled.cells) == 2
    for a, b in zip(eager.cells, compiled.cells):
        assert a["key"] == b["key"]
        assert math.isclose(a["training"]["best_loss"], b["training"]["best_loss"], rel_tol=1e-10)
        for scheme, evaluation in a["evaluations"].items():
            assert evaluation["kind"] == b["evaluations"][scheme]["kind"]
            np.testing.assert_allclose(b["evaluations"][scheme]["final_errors"], evaluation["final_errors"], rtol=1e-8)


@pytest.mark.gpu
def test_on_cuda_the_compiled_iteration_is_a_cuda_graph_and_trains_as_eager():
    """reduce-overhead on CUDA: the whole iteration is captured (no CUDA-graph skip: every tensor it updates in
    place has a static address), and a single field and an ensemble train as they do eagerly (float64)."""
    from torch._dynamo.utils import counters

    device = torch.device("cuda")
    starts, successors = (t.to(device) for t in _pairs(0.1, 8.0))
    runs = []
    counters.clear()
    for compile in (False, True):
        torch.manual_seed(0)
        field = NeuralVectorField(MLP(2, 2, 12).to(device, torch.float64))
        loss = embedded_loss(field, starts, successors[:, None], 0.1, ("rk4",))
        settings = TrainingSettings(iterations=40, batch_size=16, progress=False, compile=compile)
        runs.append((field, train(field, loss, starts.shape[0], settings)))
    _assert_same_training(*runs)
    ensembles = []
    for compile in (False, True):
        networks = []
        for seed in range(3):
            torch.manual_seed(seed)
            networks.append(MLP(2, 2, 12).to(device, torch.float64))
        ensemble = EnsembleMLP.from_networks(networks)
        three = starts.expand(3, -1, -1).contiguous(), successors.expand(3, -1, -1).contiguous()
        loss = ensemble_embedded_loss(ensemble, *three, [0.1, 0.1, 0.1], ("rk4",))
        histories = train_ensemble(ensemble, loss, [starts.shape[0]] * 3,
                                   TrainingSettings(iterations=40, batch_size=16, progress=False, compile=compile))
        ensembles.append((ensemble, histories))
    for ours, reference in zip(ensembles[1][1], ensembles[0][1]):
        torch.testing.assert_close(torch.tensor(ours.losses), torch.tensor(reference.losses), rtol=1e-12, atol=0)
    for ours, reference in zip(ensembles[1][0].parameters(), ensembles[0][0].parameters()):
        torch.testing.assert_close(ours, reference, rtol=0, atol=1e-12)
    assert counters["inductor"]["cudagraph_skips"] == 0


def test_a_step_per_element_is_still_checked_inside_a_compiled_graph():
    """Traced by torch.compile (as a compiled iteration traces its loss), rollout cannot branch on the steps'
    values; a bad step still fails, as an assertion of the graph that names the argument."""
    plan = step_plan("rk4")
    compiled = torch.compile(lambda x, dt: rollout(lambda t, y: -y, x, 0.0, dt, 3, plan, allow_nonfinite=True),
                             fullgraph=True)
    x = torch.ones(4, 2, dtype=torch.float64)
    good = torch.full((4,), 0.1, dtype=torch.float64)
    torch.testing.assert_close(compiled(x, good), rollout(lambda t, y: -y, x, 0.0, good, 3), rtol=0, atol=1e-15)
    with pytest.raises(RuntimeError, match="dt must hold finite step sizes > 0"):
        compiled(x, torch.tensor([0.1, -1.0, 0.1, 0.1], dtype=torch.float64))
