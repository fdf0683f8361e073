"""Command group "models": ``dynlearn train autoencoder|continuousnet``, ``dynlearn evaluate`` (the autoencoder's
long predictions) and ``dynlearn manifest`` (a trained ContinuousNet as other graphs)."""

from __future__ import annotations

import argparse
from typing import Callable

from dynlearn.cli.arguments import (check_writable, default, device, learning_rate, non_negative_float, positive_int,
                                    refuse_earlier_outputs, seed)

__all__ = ["register"]


def register(commands: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    from dynlearn.analysis.experiments.autoencoder_evaluation import (ALL_MODELS, AUTOENCODER_RECIPES, DEFAULT_MODELS,
                                                                       MODELS, RECIPE_FOR_SYSTEM)
    from dynlearn.analysis.experiments.autoencoder_evaluation import AutoencoderRecipe, train_run
    from dynlearn.analysis.experiments.manifestations import Perturbations
    from dynlearn.continuousnet.depth_basis import FAMILIES
    from dynlearn.continuousnet.network import ContinuousNet
    from dynlearn.continuousnet.training import COMPILE_MODES, ClassifierTrainingSettings

    trainer = commands.add_parser(
        "train", help="train a model on a dataset file",
        description="autoencoder: the physics-aware autoencoder (Lyapunov prior) and its physics-agnostic baselines "
                    "(kappa = 0, with and without weight decay), and with --models a spectrally bounded, a "
                    "continuous-time and a consistent (backward map) latent model, on a cylinder-wake or sea-surface "
                    "temperature dataset; "
                    "an existing run with the same settings resumes. continuousnet: an image classifier whose blocks "
                    "are ODEs (launch with torchrun -m dynlearn.cli for several devices).")
    trainer.add_argument("model", choices=["autoencoder", "continuousnet"], help="what to train")
    trainer.add_argument("--data", required=True,
                         help="autoencoder: a dataset file (dynlearn generate cylinder|sst, dynlearn import); "
                              "continuousnet: digits, fashion-mnist, or a folder of Fashion-MNIST IDX or CIFAR binary files")
    trainer.add_argument("-o", "--output", required=True, help="run folder")
    trainer.add_argument("--epochs", type=positive_int, default=None,
                         help=f"epochs (default: the autoencoder recipe's; "
                              f"{default(ClassifierTrainingSettings, 'epochs')} for continuousnet)")
    trainer.add_argument("--seed", type=seed, default=default(train_run, "seed"),
                         help="seed of initialisation and minibatches (default: %(default)s)")
    trainer.add_argument("--device", type=device, default=default(train_run, "device"),
                         help="cpu or cuda (default: %(default)s)")

    aware = trainer.add_argument_group("autoencoder")
    aware.add_argument("--recipe", choices=list(AUTOENCODER_RECIPES), default=None,
                       help="settings per dataset (default: from the dataset's system: "
                            f"{', '.join(f'{system} -> {name}' for system, name in RECIPE_FOR_SYSTEM.items())})")
    aware.add_argument("--kappa", type=non_negative_float, default=None,
                       help=f"weight of the Lyapunov prior (default: the recipe's, "
                            f"{default(AutoencoderRecipe, 'kappa')})")
    aware.add_argument("--prediction-steps", type=positive_int, default=None, metavar="S",
                       help=f"S, prediction steps in the loss (default: the recipe's, "
                            f"{default(AutoencoderRecipe, 'steps')}, the original objective; 8 predicts the cylinder "
                            f"wake far better, see README)")
    aware.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), metavar="MODEL",
                       help=f"which models: {', '.join(MODELS)}, continuous-SCHEME (Lambda inside a registered "
                            f"scheme: continuous-rk4, continuous-euler, ...), or all ({' '.join(ALL_MODELS)}) "
                            f"(default: {' '.join(DEFAULT_MODELS)})")
    aware.add_argument("--overwrite", action="store_true", help="replace a run with other settings")

    network = trainer.add_argument_group("continuousnet")
    network.add_argument("--scheme", default=default(ContinuousNet, "scheme"),
                         help="explicit scheme of the OdeBlocks (default: %(default)s)")
    network.add_argument("--steps-per-block", type=positive_int, default=default(ContinuousNet, "n_steps"),
                         metavar="N", help="integration steps per OdeBlock (default: --pieces)")
    network.add_argument("--pieces", type=positive_int, default=default(ContinuousNet, "pieces"),
                         help="basis functions per block (default: %(default)s)")
    network.add_argument("--basis", default=default(ContinuousNet, "basis"), choices=list(FAMILIES),
                         help="basis in depth (default: %(default)s)")
    network.add_argument("--widths", type=positive_int, nargs="+", default=list(default(ContinuousNet, "widths")),
                         help="channels per stage (default: %(default)s)")
    network.add_argument("--batch-size", type=positive_int, default=default(ClassifierTrainingSettings, "batch_size"),
                         help="global batch (default: %(default)s)")
    network.add_argument("--learning-rate", type=learning_rate,
                         default=default(ClassifierTrainingSettings, "learning_rate"),
                         help="peak of the cosine schedule (default: %(default)s)")
    network.add_argument("--refine-at", type=positive_int, nargs="*", default=[],
                         help="epochs at which steps and pieces double (incremental in depth)")
    network.add_argument("--compile", nargs="?", const="default", default=None, metavar="MODE", choices=COMPILE_MODES,
                         help="torch.compile the network (MODE: default; reduce-overhead adds CUDA graphs, "
                              "about 5x the compiled training speed of a small ContinuousNet on an H100)")
    network.add_argument("--no-augment", action="store_true", help="no random crops and flips")
    network.add_argument("--allow-pickle", action="store_true", help="read python-pickle CIFAR files (runs their code)")

    evaluator = commands.add_parser(
        "evaluate", help="evaluate a trained autoencoder run",
        description="Relative error of long predictions from initial conditions in the test part, eigenvalues of "
                    "Omega, negative eigenvalues of P, training time, and for a continuous-time model the convergence "
                    "test in latent space (steps 4 dt ... dt / 16 in Euler, midpoint and RK4, with its verdict): "
                    "RUN/evaluation/{table.md,results.json,relative_error.png,eigenvalues.png}.")
    evaluator.add_argument("run", help="run folder made by dynlearn train autoencoder")
    evaluator.add_argument("--data", default=None, help="the dataset, if it moved since training")
    evaluator.add_argument("--overwrite", action="store_true", help="replace an earlier evaluation of the run")

    manifester = commands.add_parser(
        "manifest", help="re-manifest a trained ContinuousNet with another scheme, number of steps or depth basis",
        description="Load a ContinuousNet checkpoint, rebuild it with each requested scheme, number of steps, depth "
                    "basis and number of pieces (the same weights, projected onto a new basis by L2: compression "
                    "without retraining; no data needed), and with --eval print parameters, test accuracy and "
                    "inference time of each, and accuracy under --noise, --fgsm and --pgd perturbations.")
    manifester.add_argument("checkpoint", help="model.pt written by dynlearn train continuousnet")
    manifester.add_argument("--scheme", nargs="+", default=None, help="schemes (default: the trained one)")
    manifester.add_argument("--steps-per-block", type=positive_int, nargs="+", default=None, metavar="N",
                            help="steps per OdeBlock (default: the trained number)")
    manifester.add_argument("--basis", nargs="+", default=None, choices=sorted(FAMILIES), metavar="KIND",
                            help=f"depth bases to project onto: {', '.join(sorted(FAMILIES))} "
                                 f"(default: the trained one)")
    manifester.add_argument("--pieces", type=positive_int, nargs="+", default=None, metavar="K",
                            help="pieces of each basis (default: the trained number)")
    manifester.add_argument("--resnet", action="store_true",
                            help="add the equivalent discrete ResNet (a piecewise-constant model's Euler graph)")
    manifester.add_argument("--eval", default=None, metavar="DATA", help="digits, fashion-mnist or a data folder")
    manifester.add_argument("--recalibrate", type=positive_int, default=None, metavar="BATCHES",
                            help="re-estimate each graph's batch-norm statistics from BATCHES training batches of DATA "
                                 "before evaluating it (no gradients; what a projected basis needs)")
    perturbed = manifester.add_argument_group("robustness (with --eval; pixel units: images in [0, 1])")
    perturbed.add_argument("--noise", type=non_negative_float, nargs="+", default=(), metavar="SIGMA",
                           help="accuracy under Gaussian input noise of these standard deviations")
    perturbed.add_argument("--fgsm", type=non_negative_float, nargs="+", default=(), metavar="EPSILON",
                           help="accuracy under the fast gradient sign attack of these radii")
    perturbed.add_argument("--pgd", type=non_negative_float, nargs="+", default=(), metavar="EPSILON",
                           help=f"accuracy under projected gradient descent ({default(Perturbations, 'pgd_steps')} "
                                f"steps, random start) of these radii")
    perturbed.add_argument("--robustness-images", type=positive_int, default=default(Perturbations, "images"),
                           metavar="N", help="the first N test images are perturbed (default: %(default)s)")
    manifester.add_argument("--device", type=device, default="cpu", help="cpu or cuda (default: %(default)s)")
    for model, group in (("autoencoder", aware), ("continuousnet", network)):
        _MODEL_OPTIONS[model] = {action.dest: action.default for action in group._group_actions}
    return {"train": _run_train, "evaluate": _run_evaluate, "manifest": _run_manifest}


#: train's options of each model and their defaults (filled when the parser is built)
_MODEL_OPTIONS: dict[str, dict[str, object]] = {}


def _refuse_other_models_options(arguments: argparse.Namespace) -> None:
    """``train continuousnet --kappa 2`` is an error, not a kappa silently ignored."""
    foreign = [dest for model, options in _MODEL_OPTIONS.items() if model != arguments.model
               for dest, value in options.items() if getattr(arguments, dest, value) != value]
    if foreign:
        names = ", ".join("--" + dest.replace("_", "-") for dest in foreign)
        raise ValueError(f"{names} {'does' if len(foreign) == 1 else 'do'} not apply to {arguments.model}")


def _run_train(arguments: argparse.Namespace) -> int:
    _refuse_other_models_options(arguments)
    if arguments.model == "continuousnet":
        return _run_train_continuousnet(arguments)
    from dynlearn.analysis.experiments.autoencoder_evaluation import train_run

    check_writable(arguments.output)
    histories = train_run(arguments.data, arguments.output, arguments.recipe, models=arguments.models,
                          kappa=arguments.kappa, epochs=arguments.epochs, steps=arguments.prediction_steps,
                          seed=arguments.seed, device=arguments.device, overwrite=arguments.overwrite)
    for name, history in histories.items():
        print(f"{name:>15}: final loss {history.loss[-1]:.4e}, spectral radius of Omega "
              f"{history.spectral_radius[-1]:.5f}, {history.seconds_per_epoch():.4f} s per epoch")
    print(f"wrote {arguments.output}; evaluate with: dynlearn evaluate {arguments.output}")
    return 0


def _run_train_continuousnet(arguments: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import torch

    import contextlib
    import os

    from dynlearn._checks import check_allocation, count_text
    from dynlearn._files import atomic_write, folder_lock
    from dynlearn.continuousnet.network import ContinuousNet
    from dynlearn.continuousnet.training import ClassifierTrainingSettings, initialise_distributed, train_classifier
    from dynlearn.datasets.images import ImageData, load_cifar, load_images
    from dynlearn.integration.tableaus import get_tableau

    if not get_tableau(arguments.scheme).is_explicit:
        raise ValueError(f"--scheme {arguments.scheme}: an OdeBlock needs an explicit scheme")
    check_writable(arguments.output)
    settings = ClassifierTrainingSettings(
        epochs=arguments.epochs or default(ClassifierTrainingSettings, "epochs"), batch_size=arguments.batch_size,
        learning_rate=arguments.learning_rate, augment=not arguments.no_augment, refine_at=tuple(arguments.refine_at),
        compile=arguments.compile is not None, compile_mode=arguments.compile or "default", seed=arguments.seed)
    device = initialise_distributed(arguments.device)  # under torchrun: join the group, take this rank's device
    arrays = load_cifar(arguments.data, allow_pickle=True) if arguments.allow_pickle else load_images(arguments.data)
    data = ImageData.from_arrays(arrays, device)
    with torch.device("meta"):  # the network's size, before any of it is allocated
        probe = ContinuousNet(data.n_classes, data.image_shape[0], arguments.widths, arguments.pieces, arguments.basis,
                              arguments.scheme, arguments.steps_per_block)
    n_parameters = sum(p.numel() for p in probe.parameters())
    check_allocation(f"a ContinuousNet of {count_text(n_parameters)} parameters",  # weights, gradients, momentum, best
                     4 * 4.0 * n_parameters, "choose narrower --widths or fewer --pieces")
    torch.manual_seed(arguments.seed)
    model = ContinuousNet(data.n_classes, data.image_shape[0], arguments.widths, arguments.pieces, arguments.basis,
                          arguments.scheme, arguments.steps_per_block)
    folder = Path(arguments.output)  # made by the first checkpoint; a run that fails before it leaves no folder
    # one run at a time in a folder (under torchrun, rank 0 holds the lock for all)
    lock = folder_lock(folder) if int(os.environ.get("RANK", "0")) == 0 else contextlib.nullcontext()
    with lock:
        history = train_classifier(model, data, settings, checkpoint=folder / "model.pt")
    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
        return 0
    atomic_write(folder / "log.json", lambda temporary: temporary.write_text(json.dumps(history.to_dict(), indent=2)))
    print(f"test accuracy {history.test_accuracy[-1]:.4f} after {history.epochs} epochs; wrote {folder / 'model.pt'}, "
          f"{folder / 'log.json'}")
    return 0


def _run_evaluate(arguments: argparse.Namespace) -> int:
    import os

    from dynlearn._files import folder_lock
    from dynlearn.analysis.experiments.autoencoder_evaluation import evaluate_run, markdown_table

    if not os.path.isfile(os.path.join(arguments.run, "config.json")):
        what = "is a file" if os.path.isfile(arguments.run) else (
            "holds no config.json" if os.path.isdir(arguments.run) else "does not exist")
        raise ValueError(f"{arguments.run} {what}: not a run folder made by dynlearn train autoencoder")
    refuse_earlier_outputs(os.path.join(arguments.run, "evaluation"), ("table.md", "results.json",
                           "relative_error.png", "eigenvalues.png"), arguments.overwrite)
    with folder_lock(arguments.run):  # not while a training writes into the run
        results = evaluate_run(arguments.run, data=arguments.data)
    print(markdown_table(results))
    print(f"wrote {arguments.run}/evaluation/table.md, results.json, relative_error.png, eigenvalues.png")
    return 0


def _run_manifest(arguments: argparse.Namespace) -> int:
    from dynlearn.analysis.experiments.manifestations import Perturbations, manifestation_table, markdown_manifestations
    from dynlearn.continuousnet.training import load_classifier
    from dynlearn.datasets.images import ImageData, load_images

    model, saved = load_classifier(arguments.checkpoint, arguments.device)
    block = model.blocks[0]
    planned = saved.get("epochs_planned")
    if planned is not None and int(saved.get("epoch", 0)) < int(planned):
        print(f"unfinished: {arguments.checkpoint} holds epoch {saved['epoch']} of {planned} (a run that was stopped; "
              f"rerun its train command to finish it)")
    if (arguments.noise or arguments.fgsm or arguments.pgd or arguments.recalibrate) and not arguments.eval:
        raise ValueError("--noise, --fgsm, --pgd and --recalibrate need --eval DATA")
    data = ImageData.from_arrays(load_images(arguments.eval), arguments.device) if arguments.eval else None
    perturbations = Perturbations(noise=tuple(arguments.noise), fgsm=tuple(arguments.fgsm), pgd=tuple(arguments.pgd),
                                  images=arguments.robustness_images)
    print(f"trained as {block.scheme} with {block.n_steps} steps, {block.basis}")
    rows = manifestation_table(model, data, schemes=arguments.scheme, steps=arguments.steps_per_block,
                               bases=arguments.basis, pieces=arguments.pieces, resnet=arguments.resnet,
                               perturbations=perturbations, recalibrate=arguments.recalibrate or 0)
    print(markdown_manifestations(rows))
    if data is None:
        print("(no --eval data: parameters only)")
    if data is not None and arguments.recalibrate:
        print(f"batch-norm statistics of every graph re-estimated from {arguments.recalibrate} training batches")
    if data is not None and perturbations.columns:
        print(f"robustness on the first {min(perturbations.images, data.test_labels.numel())} test images")
    return 0
