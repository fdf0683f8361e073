"""Incremental-in-depth training against full depth, on the same budget: time and accuracy over seeds.

Full depth trains ContinuousNet with ``--pieces`` K pieces and K steps per block for every epoch. The schedule
starts at K / 2^L pieces and steps and doubles both at L epochs spread evenly over the run (``refine_at``; each
refinement is exact in theta(t), :meth:`ContinuousNet.refined`), so it reaches the same graph at the end and
spends its early epochs on shallow ones. The published figure (Queiruga et al. 2020, CIFAR-10, RK4 1 -> 8-8-8):
29 % of the training time saved for -0.23 points of accuracy.

    python benchmarks/continuousnet_incremental.py                        # digits (a CPU proxy), 3 seeds
    python benchmarks/continuousnet_incremental.py --data fashion-mnist --train-images 10000 --epochs 6
    python benchmarks/continuousnet_incremental.py --data fashion-mnist --epochs 30 --device cuda --widths 16 32 64

Each seed trains both arms from the same initial weights of the final graph's architecture (the schedule's
shallow start is that network projected onto K / 2^L pieces) and the same data order. Seconds are the training
epochs' (the test evaluations after each epoch not counted).
"""

from __future__ import annotations

import argparse
import statistics

import torch

from dynlearn.continuousnet import ClassifierTrainingSettings, ContinuousNet, train_classifier
from dynlearn.datasets.images import ImageData, load_images


def train_arm(data: ImageData, arguments: argparse.Namespace, seed: int, levels: int) -> tuple[float, float]:
    """(training seconds, final test accuracy) of one arm: ``levels`` refinements (0: full depth)."""
    torch.manual_seed(seed)
    channels = data.image_shape[0]
    model = ContinuousNet(n_classes=data.n_classes, in_channels=channels, widths=arguments.widths,
                          pieces=arguments.pieces, scheme=arguments.scheme).to(arguments.device)
    if levels:
        start = arguments.pieces // 2 ** levels
        model.blocks = model.manifest(n_steps=start, pieces=start).blocks
    refine_at = tuple(round(arguments.epochs * (i + 1) / (levels + 1)) for i in range(levels))
    settings = ClassifierTrainingSettings(epochs=arguments.epochs, batch_size=arguments.batch_size,
                                          learning_rate=arguments.learning_rate, augment=False, refine_at=refine_at,
                                          seed=seed, progress=False)
    history = train_classifier(model, data, settings)
    assert model.blocks[0].basis.pieces == arguments.pieces, "the schedule must end at the full graph"
    return sum(history.seconds), history.test_accuracy[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="digits", help="digits, fashion-mnist or a folder (default: digits)")
    parser.add_argument("--train-images", type=int, default=None, help="the first N training images (default: all)")
    parser.add_argument("--scheme", default="rk4")
    parser.add_argument("--pieces", type=int, default=8, help="final pieces and steps per block (default: 8)")
    parser.add_argument("--levels", type=int, default=3, help="refinements: start at pieces / 2^levels (default: 3)")
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 16, 16])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    arguments = parser.parse_args()
    if arguments.pieces % 2 ** arguments.levels:
        parser.error(f"--pieces {arguments.pieces} must be a multiple of 2^levels = {2 ** arguments.levels}")
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    arrays = load_images(arguments.data)
    if arguments.train_images:
        arrays = {**arrays, "train_images": arrays["train_images"][:arguments.train_images],
                  "train_labels": arrays["train_labels"][:arguments.train_images]}
    data = ImageData.from_arrays(arrays, arguments.device)
    start = arguments.pieces // 2 ** arguments.levels
    schedule = " -> ".join(str(start * 2 ** i) for i in range(arguments.levels + 1))
    print(f"{arguments.data}: {data.train_labels.numel()} training, {data.test_labels.numel()} test images; "
          f"{arguments.scheme}, widths {arguments.widths}, {arguments.epochs} epochs, batch {arguments.batch_size}; "
          f"torch {torch.__version__}, {arguments.device}, {torch.get_num_threads()} threads")
    print(f"{'seed':>4} | {'full depth s':>12} | {'accuracy':>8} | {'schedule ' + schedule + ' s':>24} | "
          f"{'accuracy':>8} | time saved")
    full_times, full_accuracies, schedule_times, schedule_accuracies = [], [], [], []
    for seed in range(arguments.seeds):
        full_seconds, full_accuracy = train_arm(data, arguments, seed, 0)
        scheduled_seconds, scheduled_accuracy = train_arm(data, arguments, seed, arguments.levels)
        full_times.append(full_seconds)
        full_accuracies.append(full_accuracy)
        schedule_times.append(scheduled_seconds)
        schedule_accuracies.append(scheduled_accuracy)
        print(f"{seed:>4} | {full_seconds:>12.1f} | {full_accuracy:>8.4f} | {scheduled_seconds:>24.1f} | "
              f"{scheduled_accuracy:>8.4f} | {1 - scheduled_seconds / full_seconds:>9.1%}", flush=True)
    saved = 1 - sum(schedule_times) / sum(full_times)
    difference = [s - f for s, f in zip(schedule_accuracies, full_accuracies)]
    spread = statistics.stdev(difference) if len(difference) > 1 else float("nan")
    print(f"mean | {statistics.mean(full_times):>12.1f} | {statistics.mean(full_accuracies):>8.4f} | "
          f"{statistics.mean(schedule_times):>24.1f} | {statistics.mean(schedule_accuracies):>8.4f} | {saved:>9.1%}")
    print(f"the schedule saves {saved:.1%} of the training time; accuracy {statistics.mean(difference) * 100:+.2f} "
          f"points (standard deviation over seeds {spread * 100:.2f})")


if __name__ == "__main__":
    main()
