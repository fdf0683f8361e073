"""
ContinuousNet: one trained network, many graphs
===============================================

ContinuousNet is a ResNet continuous in depth: each block is an ODE dx/dt = F(theta(t), x) whose parameters
theta(t) are basis functions of depth t in [0, 1], integrated by an explicit Runge-Kutta scheme. After training,
the same weights can be *manifested* as another graph, with another scheme or number of steps, without data:
a model trained as a continuous flow keeps its accuracy when its steps are refined, as the learned integrators'
convergence test would predict.

Here a small network (widths 8/16/16, two constant pieces per block) is trained on scikit-learn's 8 x 8 digits in
RK4 with 2 steps per block, then evaluated, unchanged, in Euler, midpoint and RK4 with 1 to 16 steps per block.
RK4's accuracy is flat once its steps reach the trained ones; Euler and midpoint approach it as their steps are
refined, the sign of a continuous model. `dynlearn train continuousnet` and `dynlearn manifest` do this from the
command line on Fashion-MNIST or CIFAR-10 (the ContinuousNet tutorial). Run it (about 15 s on 2 CPU cores)::

    python examples/continuousnet_manifestations.py [-o continuousnet-example] [--epochs 10]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from dynlearn import ClassifierTrainingSettings, ContinuousNet, train_classifier
from dynlearn.continuousnet.training import evaluate_classifier
from dynlearn.datasets.images import ImageData, load_digits

SCHEMES, STEPS = ("euler", "midpoint", "rk4"), (1, 2, 4, 8, 16)


def main(output: Path, epochs: int = 10) -> dict[str, list[float]]:
    """Train, then evaluate every manifestation; returns the test accuracy per scheme over ``STEPS``. Writes
    ``manifestations.png`` into ``output``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output.mkdir(parents=True, exist_ok=True)
    data = ImageData.from_arrays(load_digits())  # 1500 training and 297 test images, 8 x 8, 10 classes
    torch.manual_seed(0)
    network = ContinuousNet(n_classes=10, in_channels=1, widths=(8, 16, 16), pieces=2, scheme="rk4", n_steps=2)
    history = train_classifier(network, data, ClassifierTrainingSettings(epochs=epochs, batch_size=64,
                                                                         learning_rate=0.05, augment=False,
                                                                         progress=False))
    print(f"trained in RK4 with 2 steps per block: test accuracy {history.test_accuracy[-1]:.4f}")
    accuracy = {scheme: [evaluate_classifier(network.manifest(scheme=scheme, n_steps=n), data)["accuracy"]
                         for n in STEPS] for scheme in SCHEMES}
    print("steps per block  " + " ".join(f"{n:>7}" for n in STEPS))
    for scheme, values in accuracy.items():
        print(f"{scheme:<16} " + " ".join(f"{value:7.4f}" for value in values))

    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    for scheme, values in accuracy.items():
        axis.plot(STEPS, values, "o-", label=scheme)
    axis.axvline(2, color="0.6", ls=":", label="trained: RK4, 2 steps")
    axis.set(xscale="log", xticks=STEPS, xticklabels=[str(n) for n in STEPS], xlabel="steps per block",
             ylabel="test accuracy (digits)", title="one trained ContinuousNet as other graphs")
    axis.legend()
    figure.tight_layout()
    figure.savefig(output / "manifestations.png", dpi=90)
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, default=Path("continuousnet-example"))
    parser.add_argument("--epochs", type=int, default=10, help="training epochs (default: 10)")
    arguments = parser.parse_args()
    main(arguments.output, arguments.epochs)
