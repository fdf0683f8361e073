"""The import rules of docs/architecture.md, checked on the source: who may import whom, no cycles (lazy imports
included), no private name imported across modules; and what the layout promises a user (an instrument
imports light, one public face, one stage loop, the CLI's defaults are the library's, progress in a log)."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

import pytest

import dynlearn

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"dynlearn": ROOT / "dynlearn", "dynlearn.systems": ROOT / "systems", "dynlearn.datasets": ROOT / "datasets",
           "dynlearn.analysis": ROOT / "analysis"}
UTILITIES = ("dynlearn._checks", "dynlearn._files", "dynlearn.progress", "dynlearn.expressions", "dynlearn.tasks", "dynlearn")  # "dynlearn": __version__ only
INTEGRATION = ("dynlearn.integration",)

# room -> the rooms it may import (besides itself and the standard and third-party libraries)
RULES = {
    "dynlearn.integration": UTILITIES,
    "dynlearn.fields": UTILITIES + INTEGRATION,
    "dynlearn.autoencoder": UTILITIES + INTEGRATION,
    "dynlearn.continuousnet": UTILITIES + INTEGRATION,
    "dynlearn.systems": UTILITIES + INTEGRATION,
    "dynlearn.datasets": UTILITIES + INTEGRATION + ("dynlearn.systems",),
    "dynlearn.analysis": UTILITIES + INTEGRATION,  # the instruments
    "dynlearn.analysis.experiments": UTILITIES + INTEGRATION + ("dynlearn.fields", "dynlearn.autoencoder",
                                                                "dynlearn.continuousnet", "dynlearn.systems",
                                                                "dynlearn.datasets", "dynlearn.analysis"),
    "dynlearn.cli": None,  # ties everything together
}
UTILITY_MODULES = ("dynlearn._checks", "dynlearn._files", "dynlearn.progress", "dynlearn.expressions", "dynlearn.tasks")


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if package == "dynlearn" and parts[0] in ("systems", "datasets", "analysis"):
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _imports(module: str) -> list[tuple[str, list[str], int]]:
    """(imported module, names, line) for every import in ``module``, at any depth (lazy ones included)."""
    tree = ast.parse(MODULES[module].read_text())
    package = module if _is_package(module) else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [alias.name for alias in node.names]
            submodules = [f"{base}.{name}" for name in names if f"{base}.{name}" in MODULES]
            found.append((base, [n for n in names if f"{base}.{n}" not in MODULES], node.lineno))
            found += [(sub, [], node.lineno) for sub in submodules]
    return [(target, names, line) for target, names, line in found if target.split(".")[0] == "dynlearn"]


def _room(module: str) -> str:
    for room in sorted(RULES, key=len, reverse=True):
        if module == room or module.startswith(room + "."):
            return room
    return module  # a utility module, or the package itself


def test_every_module_belongs_to_a_room():
    loose = [m for m in MODULES if _room(m) not in RULES and m not in UTILITY_MODULES and m != "dynlearn"]
    assert not loose, f"modules outside the rooms of docs/architecture.md: {loose}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_rules(module):
    room = _room(module)
    allowed = RULES.get(room, UTILITIES)
    if module in UTILITY_MODULES:
        allowed = ("dynlearn._checks", "dynlearn._files")
    if module == "dynlearn":  # the public face re-exports the core's families, never the sub-packages beside it
        allowed = UTILITIES + INTEGRATION + ("dynlearn.fields", "dynlearn.autoencoder", "dynlearn.continuousnet")
    for target, names, line in _imports(module):
        where = f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}"
        assert not (target.startswith("dynlearn.cli") and room != "dynlearn.cli"), f"{where}: nothing imports the CLI"
        if allowed is None or _room(target) == room:
            continue
        if target == "dynlearn":
            assert set(names) <= {"__version__"}, f"{where}: only __version__ comes from the package face"
            continue
        assert any(target == rule or target.startswith(rule + ".") for rule in allowed if rule != "dynlearn"), \
            f"{where}: {room} may import only {', '.join(allowed)}"
        if room == "dynlearn.analysis.experiments":
            assert _room(target) != room or target == room, f"{where}: an experiment imports another"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("dynlearn.analysis.experiments.")))
def test_experiments_never_import_one_another(module):
    for target, _, line in _imports(module):
        assert not target.startswith("dynlearn.analysis.experiments"), \
            f"{MODULES[module].relative_to(ROOT)}:{line}: an experiment imports {target}"


def test_no_private_name_is_imported_across_modules():
    offences = []
    for module in MODULES:
        for target, names, line in _imports(module):
            private = [n for n in names if n.startswith("_") and n != "__version__"]
            if private and target != module:
                offences.append(f"{MODULES[module].relative_to(ROOT)}:{line}: {target} {private}")
    assert not offences, offences


def test_no_import_cycles_lazy_imports_included():
    graph = {module: sorted({target for target, _, _ in _imports(module) if target in MODULES and target != module})
             for module in MODULES}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for successor in graph[node]:
            if state.get(successor) == 1:
                cycles.append(path[path.index(successor):] + [successor])
            elif successor not in state:
                visit(successor, path + [successor])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


def test_an_instrument_imports_light():
    """Importing the convergence test loads neither h5py, the autoencoder, ContinuousNet, the cylinder solver nor
    an experiment."""
    code = ("import sys; from dynlearn.analysis import convergence_test, fit_convergence_rate, convergence_study; "
            "heavy = ['h5py', 'dynlearn.autoencoder', 'dynlearn.continuousnet', 'dynlearn.systems.cylinder', "
            "'dynlearn.analysis.experiments', 'dynlearn.datasets']; print([m for m in heavy if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_the_public_face_offers_what_its_all_says():
    assert {"step", "rollout", "odeint", "get_tableau", "register_tableau", "ButcherTableau", "EmbeddedModel",
            "NeuralVectorField", "train", "embedded_loss", "ContinuousNet",
            "PhysicsAwareAutoencoder"} <= set(dynlearn.__all__)
    for name in dynlearn.__all__:
        value = getattr(dynlearn, name)
        module = getattr(value, "__module__", "dynlearn")
        assert module.startswith("dynlearn") or name in ("VectorField", "ADAPTIVE_METHODS"), (name, module)
    with pytest.raises(AttributeError):
        dynlearn.no_such_name  # noqa: B018


def test_one_stage_loop_skips_dormand_prince_seventh_stage_in_an_odeblock():
    """OdeBlock steps through the integration engine's plan: dopri5 costs 6 residuals per step, not 7, and the
    result equals a rollout of the same residual field."""
    import torch

    from dynlearn.continuousnet import OdeBlock, make_basis
    from dynlearn.integration import rollout, step_plan

    torch.manual_seed(0)
    block = OdeBlock(3, make_basis("piecewise_constant", 1), scheme="dopri5", n_steps=2).double().eval()
    assert block.plan is step_plan("dopri5") and block.plan.evaluations == 6
    calls = []
    original = block._residual
    block._residual = lambda x, parameters: calls.append(1) or original(x, parameters)
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    out = block(x)
    assert len(calls) == 12
    weights = torch.ones(1, dtype=torch.float64)  # one piece: theta is the same at every stage
    reference = rollout(lambda t, state: block.residual(state, weights), x, 0.0, 0.5, 2, "dopri5")[-1]
    torch.testing.assert_close(out, reference, rtol=1e-12, atol=1e-12)


def _parse(*argv: str) -> argparse.Namespace:
    from dynlearn.cli import build_parser

    return build_parser().parse_args(list(argv))


def test_the_cli_reads_its_defaults_from_the_library():
    from dynlearn.analysis.experiments.recorded_field import RecordedFieldRecipe
    from dynlearn.cli.arguments import default
    from dynlearn.continuousnet import ClassifierTrainingSettings, ContinuousNet
    from dynlearn.datasets.generate import generate_cylinder_dataset, generate_dataset

    generate = _parse("generate", "cylinder", "-o", "x.h5")
    assert generate.preset == default(generate_cylinder_dataset, "preset") == "coarse"
    assert (generate.dt, generate.t_final, generate.seed) == tuple(default(generate_dataset, n)
                                                                   for n in ("dt", "t_final", "seed"))
    train = _parse("train", "continuousnet", "--data", "digits", "-o", "run")
    assert (train.batch_size, train.learning_rate) == (ClassifierTrainingSettings.batch_size,
                                                       ClassifierTrainingSettings.learning_rate)
    assert (train.scheme, train.pieces, tuple(train.widths)) == (default(ContinuousNet, "scheme"),
                                                                 default(ContinuousNet, "pieces"),
                                                                 tuple(default(ContinuousNet, "widths")))
    help_text = subprocess.run([sys.executable, "-m", "dynlearn.cli", "study", "--help"], capture_output=True,
                               text=True, check=True).stdout
    assert f"default: {RecordedFieldRecipe.modes})" in " ".join(help_text.split())


def test_progress_in_a_log_is_one_line_per_finished_stage(capsys, monkeypatch):
    from dynlearn import progress as module

    monkeypatch.setattr(module, "_mode", None)
    monkeypatch.setenv("DYNLEARN_PROGRESS", "auto")  # capsys's stderr is not a terminal: lines
    assert module.progress_mode() == "lines"
    bar = module.progress(range(500), total=500, description="training")
    for index in bar:
        if index % 50 == 0:
            bar.set_postfix(loss=f"{1 / (index + 1):.1e}")
    err = capsys.readouterr().err
    # one line, with the last postfix (set at index 450)
    assert err.count("\n") == 1 and err.startswith("training: 500/500 in ") and "loss=2.2e-03" in err
    module.set_progress_mode("off")
    list(module.progress(range(10), total=10, description="quiet"))
    assert capsys.readouterr().err == ""
    module.set_progress_mode("bar")
    assert module.progress_mode() == "bar"
    with pytest.raises(ValueError, match="progress mode must be one of auto, bar, lines, off; got 'loud'"):
        module.set_progress_mode("loud")
    monkeypatch.setattr(module, "_mode", None)
    monkeypatch.setenv("DYNLEARN_PROGRESS", "loud")
    with pytest.raises(ValueError, match="DYNLEARN_PROGRESS"):
        module.progress_mode()
