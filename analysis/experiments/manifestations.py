"""A trained ContinuousNet as other graphs (``dynlearn manifest``): the same weights under other schemes and
numbers of steps, projected onto other depth bases or fewer pieces (compression without retraining; with
``recalibrate``, the batch-norm statistics re-estimated from training batches, no gradients), and the
equivalent discrete ResNet; for each, the parameters it keeps, test accuracy, inference time and, on request,
accuracy under Gaussian input noise, FGSM and PGD (:mod:`dynlearn.analysis.robustness`, in pixel units).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Sequence

import torch

from dynlearn._checks import as_flag
from dynlearn.analysis.robustness import accuracy_under_perturbation, fgsm, gaussian_noise, projected_gradient_descent
from dynlearn.continuousnet.depth_basis import FAMILIES
from dynlearn.continuousnet.network import ContinuousNet
from dynlearn.continuousnet.training import evaluate_classifier, recalibrate_statistics

__all__ = ["Perturbations", "manifestation_table", "markdown_manifestations"]


@dataclasses.dataclass(frozen=True)
class Perturbations:
    """Which perturbations to measure (pixel units, images in [0, 1]; empty: none), on the first ``images`` test
    images; PGD takes ``pgd_steps`` steps of 2.5 epsilon / steps from a random start."""

    noise: tuple[float, ...] = ()
    fgsm: tuple[float, ...] = ()
    pgd: tuple[float, ...] = ()
    images: int = 1000
    pgd_steps: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("noise", "fgsm", "pgd"):
            values = tuple(float(v) for v in getattr(self, name))
            if any(not (0.0 <= v < float("inf")) for v in values):
                raise ValueError(f"{name} radii must be finite numbers >= 0, got {values}")
            object.__setattr__(self, name, values)
        for name in ("images", "pgd_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")

    @property
    def columns(self) -> list[str]:
        return ([f"noise {v:g}" for v in self.noise] + [f"FGSM {v:g}" for v in self.fgsm]
                + [f"PGD {v:g}" for v in self.pgd])


def parameter_count(model: torch.nn.Module) -> int:
    """Trainable numbers the graph holds (buffers such as batch-norm statistics not counted)."""
    return sum(p.numel() for p in model.parameters())


def _robustness(model: torch.nn.Module, data, perturbations: Perturbations, batch_size: int) -> dict[str, float]:
    model.eval()
    results: dict[str, float] = {}
    batches = list(data.pixel_batches("test", batch_size, limit=perturbations.images))

    def noisy(sigma: float):
        generator = torch.Generator().manual_seed(perturbations.seed)  # the same noise for every graph
        return lambda m, images, labels: gaussian_noise(images, sigma, generator=generator)

    def pgd(epsilon: float):
        generator = torch.Generator().manual_seed(perturbations.seed)
        return lambda m, images, labels: projected_gradient_descent(
            m, images, labels, epsilon, steps=perturbations.pgd_steps, model_input=data.from_pixels,
            generator=generator)

    attacks = ([(f"noise {v:g}", noisy(v)) for v in perturbations.noise]
               + [(f"FGSM {v:g}", lambda m, images, labels, v=v: fgsm(m, images, labels, v,
                                                                      model_input=data.from_pixels))
                  for v in perturbations.fgsm]
               + [(f"PGD {v:g}", pgd(v)) for v in perturbations.pgd])
    for column, attack in attacks:
        results[column] = accuracy_under_perturbation(model, batches, attack, model_input=data.from_pixels)
    return results


def manifestation_table(model: ContinuousNet, data=None, *, schemes: Sequence[str] | None = None,
                        steps: Sequence[int] | None = None, bases: Sequence[str] | None = None,
                        pieces: Sequence[int] | None = None, resnet: bool = False,
                        perturbations: Perturbations | None = None, batch_size: int = 500,
                        recalibrate: int = 0) -> list[dict[str, Any]]:
    """One row per graph: every combination of ``schemes`` x ``steps`` x ``bases`` x ``pieces`` (None: the trained
    one), then with ``resnet`` the equivalent discrete ResNet (``to_resnet`` of the Euler manifestation with one step
    per piece, piecewise-constant bases only). Each row: scheme, steps, basis, pieces, parameters, and with ``data``
    (:class:`dynlearn.datasets.images.ImageData`) accuracy, seconds and the ``perturbations``' accuracies.
    ``recalibrate``: re-estimate each graph's batch-norm statistics from that many training batches first
    (:func:`dynlearn.continuousnet.training.recalibrate_statistics`: no gradients; what a projection onto a
    smaller basis needs, since projected statistics do not match the projected network)."""
    resnet = as_flag("resnet", resnet)
    block = model.blocks[0]
    schemes = list(schemes or [block.scheme])
    steps = list(steps or [block.n_steps])
    bases = list(bases or [block.basis.name])
    pieces = list(pieces or [block.basis.pieces])
    for name in bases:
        if name not in FAMILIES:
            raise ValueError(f"basis must be one of {', '.join(FAMILIES)}, got {name!r}")
    perturbations = perturbations or Perturbations()
    graphs: list[tuple[dict[str, Any], torch.nn.Module]] = []
    for basis, count, scheme, n_steps in itertools.product(bases, pieces, schemes, steps):
        manifested = model.manifest(scheme=scheme, n_steps=n_steps, basis=basis, pieces=count)
        graphs.append(({"graph": "ContinuousNet", "scheme": scheme, "steps": n_steps, "basis": basis,
                        "pieces": count}, manifested))
    if resnet:
        if block.basis.name != "piecewise_constant":
            raise ValueError(f"resnet: the equivalent ResNet exists for a model with the piecewise-constant basis; "
                             f"this one has {block.basis.name} (manifest(basis='piecewise_constant') and to_resnet() "
                             f"give the ResNet of its projection)")
        graphs.append(({"graph": "ResNet", "scheme": "euler", "steps": block.basis.pieces, "basis": block.basis.name,
                        "pieces": block.basis.pieces},
                       model.manifest(scheme="euler", n_steps=block.basis.pieces).to_resnet()))
    rows = []
    for row, graph in graphs:
        row["parameters"] = parameter_count(graph)
        if data is not None:
            if recalibrate:
                recalibrate_statistics(graph, data, recalibrate)
            result = evaluate_classifier(graph, data, batch_size)
            row["accuracy"], row["seconds"] = result["accuracy"], result["seconds"]
            row.update(_robustness(graph, data, perturbations, batch_size))
        rows.append(row)
    return rows


def markdown_manifestations(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`manifestation_table` as a markdown table."""
    if not rows:
        return ""
    keys = [k for k in rows[0] if k != "graph"]
    header = "| graph | " + " | ".join(keys) + " |"
    lines = [header, "| " + " | ".join(["---"] * (len(keys) + 1)) + " |"]
    for row in rows:
        cells = []
        for key in keys:
            value = row.get(key, "")
            text = f"{value:.4f}" if isinstance(value, float) else str(value)
            cells.append(f"{value:.3f}" if key == "seconds" else text)
        lines.append(f"| {row['graph']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
