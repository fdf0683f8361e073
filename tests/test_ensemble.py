"""Ensembles: a member is its own MLP, its loss is the solo loss, and training M members at once ends where training
each alone ends (float64, to round-off), whatever their data, step, seed, batch size, schedule and early stop."""

from __future__ import annotations

import math

import pytest
import torch

from dynlearn.fields import MLP, NeuralVectorField, TrainingSettings, embedded_loss, train
from dynlearn.fields.ensemble import EnsembleMLP, EnsembleVectorField, ensemble_embedded_loss
from dynlearn.fields.training import train_ensemble
from dynlearn.integration import rollout
from dynlearn.systems import make_system

PENDULUM = make_system("pendulum", gravity=9.81, length=1.0)
START = torch.tensor([3 * math.pi / 4, 0.0], dtype=torch.float64)


def _pairs(dt: float, time_units: float) -> tuple[torch.Tensor, torch.Tensor]:
    n = round(time_units / dt)
    trajectory = PENDULUM.solution(START, torch.arange(n + 1, dtype=torch.float64) * dt)
    return trajectory[:-1], trajectory[1:]


def _network(seed: int, width: int = 16) -> MLP:
    torch.manual_seed(seed)
    return MLP(2, 2, width).to(torch.float64)


def _stack(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    longest = max(p[0].shape[0] for p in pairs)
    starts = torch.zeros(len(pairs), longest, 2, dtype=torch.float64)
    successors = torch.zeros_like(starts)
    for m, (x, y) in enumerate(pairs):
        starts[m, :x.shape[0]], successors[m, :x.shape[0]] = x, y
    return starts, successors, [p[0].shape[0] for p in pairs]


def test_members_are_their_networks_and_back():
    networks = [_network(seed) for seed in range(3)]
    ensemble = EnsembleMLP.from_networks(networks)
    x = torch.randn(3, 7, 2, dtype=torch.float64)
    expected = torch.stack([net(x[m]) for m, net in enumerate(networks)])
    torch.testing.assert_close(ensemble(x), expected, rtol=0, atol=1e-14)
    for m, net in enumerate(networks):
        for a, b in zip(net.parameters(), ensemble.member(m).parameters()):
            assert torch.equal(a, b)
    with pytest.raises(ValueError, match="same layers"):
        EnsembleMLP.from_networks([_network(0, 16), _network(1, 8)])
    with pytest.raises(ValueError, match="members, batch, features"):
        ensemble(torch.zeros(2, 7, 2, dtype=torch.float64))


def test_member_loss_is_the_solo_loss_at_its_own_step():
    cases = [(0.2, ("rk4",)), (0.1, ("rk4",)), (0.05, ("rk4",))]
    pairs = [_pairs(dt, 2.0) for dt, _ in cases]
    networks = [_network(seed) for seed in range(3)]
    starts, successors, counts = _stack(pairs)
    ensemble = EnsembleMLP.from_networks(networks)
    for schemes in (("euler",), ("midpoint", "rk4")):
        losses = ensemble_embedded_loss(ensemble, starts, successors, [dt for dt, _ in cases], schemes, counts)(None)
        for m, ((dt, _), (x, y)) in enumerate(zip(cases, pairs)):
            solo = embedded_loss(NeuralVectorField(networks[m]), x, y[:, None], dt, schemes)(None)
            assert float(losses[m].detach()) == pytest.approx(float(solo.detach()), rel=1e-12)


def test_a_member_ends_where_training_it_alone_ends():
    """Different steps, seeds, amounts of data, batch sizes (full and minibatch), rates and early stops in one
    ensemble: every member's weights equal solo training's to 1e-10 (float64)."""
    cases = [  # dt, seed, batch size, learning rate, patience
        (0.4, 0, 16, 1e-2, 10_000),
        (0.2, 1, None, 3e-3, 10_000),
        (0.1, 2, 32, 1e-2, 40),  # stops early
        (0.2, 3, 200, 1e-2, 10_000),  # a batch larger than its data: full batch
    ]
    schemes = ("midpoint", "rk4")
    settings = [TrainingSettings(iterations=250, learning_rate=rate, final_learning_rate=rate / 100, batch_size=batch,
                                 patience=patience, min_improvement=1e-2, seed=seed, progress=False)
                for _, seed, batch, rate, patience in cases]
    pairs = [_pairs(dt, 8.0) for dt, *_ in cases]
    alone = []
    for (dt, seed, *_), (x, y), setting in zip(cases, pairs, settings):
        field = NeuralVectorField(_network(seed))
        history = train(field, embedded_loss(field, x, y[:, None], dt, schemes), x.shape[0], setting)
        alone.append((field.network, history))
    ensemble = EnsembleMLP.from_networks([_network(seed) for _, seed, *_ in cases])
    starts, successors, counts = _stack(pairs)
    loss = ensemble_embedded_loss(ensemble, starts, successors, [dt for dt, *_ in cases], schemes, counts)
    histories = train_ensemble(ensemble, loss, counts, settings)
    assert histories[2].stopped_early and histories[2].iterations < 250  # the early stop was exercised
    for m, (network, history) in enumerate(alone):
        assert histories[m].iterations == history.iterations
        assert histories[m].best_iteration == history.best_iteration
        assert histories[m].best_loss == pytest.approx(history.best_loss, rel=1e-10)
        for a, b in zip(network.parameters(), ensemble.member(m).parameters()):
            torch.testing.assert_close(b, a.detach(), rtol=0, atol=1e-10)


def test_a_member_on_irregular_pairs_ends_where_training_it_alone_ends():
    """Steps of its own per pair (uniform in dt (1 +- 0.5)), minibatches: each member as solo training, to 1e-10."""
    from dynlearn.datasets.sampling import IrregularSampling

    settings = [TrainingSettings(iterations=150, learning_rate=1e-2, final_learning_rate=1e-4, batch_size=batch,
                                 seed=seed, progress=False) for seed, batch in ((0, 16), (1, None))]
    data = []
    for seed, dt in ((0, 0.2), (1, 0.1)):
        times = IrregularSampling("random_steps", 0.5, seed).draw(1, dt, 4.0)[0]
        trajectory = PENDULUM.solution(START, times[torch.isfinite(times)])
        data.append((trajectory[:-1], trajectory[1:], times[torch.isfinite(times)].diff()))
    alone = []
    for (x, y, steps), setting, seed in zip(data, settings, (0, 1)):
        field = NeuralVectorField(_network(seed))
        train(field, embedded_loss(field, x, y[:, None], steps, ("rk4",)), x.shape[0], setting)
        alone.append(field.network)
    starts, successors, counts = _stack([(x, y) for x, y, _ in data])
    steps = torch.full(starts.shape[:2], 0.1, dtype=torch.float64)
    for m, (_, _, own) in enumerate(data):
        steps[m, :own.shape[0]] = own
    ensemble = EnsembleMLP.from_networks([_network(seed) for seed in (0, 1)])
    train_ensemble(ensemble, ensemble_embedded_loss(ensemble, starts, successors, steps, ("rk4",), counts), counts,
                   settings)
    for m, network in enumerate(alone):
        for a, b in zip(network.parameters(), ensemble.member(m).parameters()):
            torch.testing.assert_close(b, a.detach(), rtol=0, atol=1e-10)


def test_ensemble_training_resumes_from_its_checkpoint_exactly(tmp_path):
    cases = [(0.2, 0), (0.1, 1)]
    pairs = [_pairs(dt, 4.0) for dt, _ in cases]
    starts, successors, counts = _stack(pairs)
    settings = [TrainingSettings(iterations=120, batch_size=8, seed=seed, checkpoint_every=40, progress=False)
                for _, seed in cases]

    def run(interrupt_at: int | None, path):
        def fresh():
            ensemble = EnsembleMLP.from_networks([_network(seed) for _, seed in cases])
            return ensemble, ensemble_embedded_loss(ensemble, starts, successors, [dt for dt, _ in cases], ("rk4",),
                                                    counts)

        if interrupt_at is not None:  # a run killed after its checkpoint at interrupt_at, as Ctrl-C or a kill would
            ensemble, loss = fresh()
            calls = []

            def interrupted(index):
                calls.append(1)
                if len(calls) > interrupt_at + 5:
                    raise KeyboardInterrupt
                return loss(index)

            with pytest.raises(KeyboardInterrupt):
                train_ensemble(ensemble, interrupted, counts, settings, checkpoint=path)
            assert path.exists()
        ensemble, loss = fresh()
        return ensemble, train_ensemble(ensemble, loss, counts, settings, checkpoint=path)

    whole, whole_histories = run(None, None)
    resumed, resumed_histories = run(80, tmp_path / "group.pt")
    for a, b in zip(whole.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    assert [h.losses for h in whole_histories] == [h.losses for h in resumed_histories]


def test_a_diverging_member_stops_alone():
    pairs = [_pairs(0.1, 2.0), _pairs(0.1, 2.0)]
    starts, successors, counts = _stack(pairs)
    ensemble = EnsembleMLP.from_networks([_network(0), _network(1)])
    with torch.no_grad():
        ensemble.weights[-1][1].fill_(float("nan"))
    loss = ensemble_embedded_loss(ensemble, starts, successors, [0.1, 0.1], ("rk4",), counts)
    histories = train_ensemble(ensemble, loss, counts, TrainingSettings(iterations=30, progress=False))
    assert histories[1].failure is not None and "iteration 0" in histories[1].failure
    assert histories[0].failure is None and histories[0].iterations == 30
    assert torch.isfinite(ensemble.member(0)[0].weight).all()


def test_ensemble_rollout_is_each_member_rolled_out():
    networks = [_network(seed) for seed in range(4)]
    field = EnsembleVectorField(EnsembleMLP.from_networks(networks))
    x0 = START.expand(4, 1, 2).contiguous()
    with torch.no_grad():
        together = rollout(field, x0, 0.0, 0.05, 40, "rk4")
        for m, network in enumerate(networks):
            alone = rollout(NeuralVectorField(network), START[None], 0.0, 0.05, 40, "rk4")
            torch.testing.assert_close(together[:, m], alone, rtol=0, atol=1e-13)
