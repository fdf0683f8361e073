"""Image-classification data for ContinuousNet, read from the user's files without running any code from them.

- Fashion-MNIST (70 000 28x28 grey images, 10 classes) as four IDX files (``train-images-idx3-ubyte.gz`` ...),
  by default where Debian's ``dataset-fashion-mnist`` package puts them (/usr/share/datasets/fashion-mnist).
- CIFAR-10 / CIFAR-100 in the official binary format (``cifar-10-batches-bin``: records of one label byte and
  3072 pixel bytes; ``cifar-100-binary``: a coarse and a fine label byte, then the pixels), parsed with numpy.
  The python-pickle format only with ``allow_pickle=True``: unpickling a file runs code from it.
- scikit-learn's 8x8 digits (1797 images, inside scikit-learn) for fast CPU tests.

:class:`ImageData` keeps the whole set as uint8 tensors on the training device (Fashion-MNIST is 55 MB, CIFAR
180 MB), normalises per channel with the training statistics and augments on the device (random crop with
zero padding, horizontal flip): no worker processes, and the GPU is never waiting for a loader.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from dynlearn._checks import as_flag

__all__ = ["ImageData", "read_idx", "load_fashion_mnist", "load_cifar", "load_digits", "load_images",
           "FASHION_MNIST_FOLDER"]

#: where Debian's ``dataset-fashion-mnist`` package puts the IDX files (``--data fashion-mnist`` reads them)
FASHION_MNIST_FOLDER = Path("/usr/share/datasets/fashion-mnist")
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (MNIST format, optionally gzipped): magic 0x0000 TT DD, DD big-endian sizes, then the data."""
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such file")
    raw = (gzip.open if source.suffix == ".gz" else open)(source, "rb").read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{source}: not an IDX file (bad magic number)")
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = 4 + 4 * dims + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{source}: holds {len(raw)} bytes, its header {shape} announces {expected}")
    return np.frombuffer(raw, dtype=dtype, offset=4 + 4 * dims).reshape(shape)


def load_fashion_mnist(folder: str | os.PathLike = FASHION_MNIST_FOLDER) -> dict[str, np.ndarray]:
    """Fashion-MNIST: ``train_images`` (60000, 1, 28, 28) uint8, ``train_labels``, ``test_images``, ``test_labels``."""
    folder = Path(folder)
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        for kind, suffix in (("images", "idx3-ubyte"), ("labels", "idx1-ubyte")):
            candidates = [folder / f"{prefix}-{kind}-{suffix}.gz", folder / f"{prefix}-{kind}-{suffix}"]
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                raise FileNotFoundError(f"{folder}: no {prefix}-{kind}-{suffix}[.gz] (Fashion-MNIST IDX files; on Debian: "
                                        f"apt-get install dataset-fashion-mnist)")
            out[f"{split}_{kind}"] = read_idx(found)
    for split in ("train", "test"):
        images, labels = out[f"{split}_images"], out[f"{split}_labels"]
        if images.ndim != 3 or labels.shape != (images.shape[0],):
            raise ValueError(f"{folder}: {split} images {images.shape} and labels {labels.shape} do not match")
        out[f"{split}_images"] = images[:, None]
    return out


def _cifar_records(path: Path, label_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    record = label_bytes + 3072
    if raw.size == 0 or raw.size % record:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of {record}-byte CIFAR records")
    table = raw.reshape(-1, record)
    return table[:, label_bytes:].reshape(-1, 3, 32, 32), table[:, label_bytes - 1].astype(np.int64)


def load_cifar(folder: str | os.PathLike, *, allow_pickle: bool = False) -> dict[str, np.ndarray]:
    """CIFAR-10 (``cifar-10-batches-bin``: data_batch_1..5.bin, test_batch.bin) or CIFAR-100 (``cifar-100-binary``:
    train.bin, test.bin; fine labels) in the binary format. ``allow_pickle=True`` also reads the python version
    (``cifar-10-batches-py``), which unpickles the files: only for files you trust."""
    allow_pickle = as_flag("allow_pickle", allow_pickle)  # a truthy "no" must not unpickle
    folder = Path(folder)
    if (folder / "data_batch_1.bin").is_file():
        parts = [_cifar_records(folder / f"data_batch_{k}.bin", 1) for k in range(1, 6)]
        test = _cifar_records(folder / "test_batch.bin", 1)
        train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    elif (folder / "train.bin").is_file():
        train, test = _cifar_records(folder / "train.bin", 2), _cifar_records(folder / "test.bin", 2)
    elif (folder / "data_batch_1").is_file():
        if not allow_pickle:
            raise ValueError(f"{folder}: the python-pickle CIFAR format; unpickling runs code from the file. Use the "
                             f"binary version (cifar-10-batches-bin), or pass allow_pickle=True (--allow-pickle) for files "
                             f"you trust")
        import pickle

        def batch(name: str) -> tuple[np.ndarray, np.ndarray]:
            with open(folder / name, "rb") as stream:
                content = pickle.load(stream, encoding="bytes")  # noqa: S301 - explicit opt-in
            return np.asarray(content[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32), np.asarray(content[b"labels"])

        parts = [batch(f"data_batch_{k}") for k in range(1, 6)]
        train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
        test = batch("test_batch")
    else:
        raise FileNotFoundError(f"{folder}: no CIFAR files (data_batch_1.bin ... of cifar-10-batches-bin, or train.bin "
                                f"of cifar-100-binary)")
    return {"train_images": train[0], "train_labels": train[1], "test_images": test[0], "test_labels": test[1]}


def load_digits() -> dict[str, np.ndarray]:
    """scikit-learn's 8x8 digits as uint8 images (values 0..16 scaled to 0..255), split 1500 / 297 (fixed)."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise ImportError("the digits data ship with scikit-learn: pip install scikit-learn") from None
    bunch = sklearn_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    labels = bunch.target.astype(np.int64)
    return {"train_images": images[:1500], "train_labels": labels[:1500], "test_images": images[1500:],
            "test_labels": labels[1500:]}


def load_images(source: str) -> dict[str, np.ndarray]:
    """"digits", "fashion-mnist" (the Debian folder), or a folder of Fashion-MNIST IDX or CIFAR binary files."""
    if source == "digits":
        return load_digits()
    if source == "fashion-mnist":
        return load_fashion_mnist()
    folder = Path(source)
    if not folder.is_dir():
        raise FileNotFoundError(f"{source}: {'a file' if folder.exists() else 'no such folder'}; image data are "
                                f"'digits', 'fashion-mnist' or a folder of Fashion-MNIST IDX or CIFAR binary files")
    if any(folder.glob("*idx3-ubyte*")):
        return load_fashion_mnist(folder)
    return load_cifar(folder)


def _tensor_ready(array: np.ndarray) -> np.ndarray:
    """C-contiguous and writable (a copy only where it is not: files read through a buffer are read-only, which
    torch.from_numpy warns about)."""
    return np.require(array, requirements=["C_CONTIGUOUS", "WRITEABLE"])


@dataclasses.dataclass
class ImageData:
    """Images (uint8, on ``device``) with labels, normalised per channel by the training mean and std."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    n_classes: int

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], device: str | torch.device = "cpu") -> "ImageData":
        train = torch.from_numpy(_tensor_ready(arrays["train_images"]))
        scaled = train.double() / 255.0
        mean = scaled.mean(dim=(0, 2, 3)).float()
        std = scaled.std(dim=(0, 2, 3)).float()
        labels = torch.from_numpy(np.asarray(arrays["train_labels"], dtype=np.int64))
        return cls(train.to(device), labels.to(device),
                   torch.from_numpy(_tensor_ready(arrays["test_images"])).to(device),
                   torch.from_numpy(np.asarray(arrays["test_labels"], dtype=np.int64)).to(device),
                   mean.to(device), std.to(device), int(labels.max()) + 1)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.train_images.shape[1:])

    def normalise(self, images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The model's input of uint8 ``images`` (batch, C, H, W): (x / 255 - mean) / std per channel."""
        return self.from_pixels(images.to(dtype) / 255.0)

    def from_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """The model's input of images in pixel units [0, 1] (batch, C, H, W): (x - mean) / std per channel, in
        ``pixels``' dtype (differentiable: attacks perturb pixels, the model sees this)."""
        return (pixels - self.mean[:, None, None].to(pixels.dtype)) / self.std[:, None, None].to(pixels.dtype)

    def pixel_batches(self, split: str, batch_size: int, limit: int | None = None,
                      dtype: torch.dtype = torch.float32) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of (images in [0, 1], labels) in order, the first ``limit`` images (None: all)."""
        images = self.train_images if split == "train" else self.test_images
        labels = self.train_labels if split == "train" else self.test_labels
        n = images.shape[0] if limit is None else min(int(limit), images.shape[0])
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            yield images[start:stop].to(dtype) / 255.0, labels[start:stop]

    def batches(self, split: str, batch_size: int, *, shuffle: bool = False, augment: bool = False,
                generator: torch.Generator | None = None,
                shard: tuple[int, int] = (0, 1)) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Normalised float batches; ``augment``: random crop (zero padding of 1/8 of the side) and flip;
        ``shard = (rank, world)``: this process's share of every batch (the same ``generator`` seed on every
        process gives every process the same order)."""
        shuffle, augment = as_flag("shuffle", shuffle), as_flag("augment", augment)
        images = self.train_images if split == "train" else self.test_images
        labels = self.train_labels if split == "train" else self.test_labels
        n = images.shape[0]
        order = torch.randperm(n, generator=generator).to(images.device) if shuffle else torch.arange(n, device=images.device)
        for start in range(0, n, batch_size):
            index = order[start:start + batch_size]
            if shard[1] > 1 and index.numel() < batch_size:
                break  # every process must take the same number of steps: the last, partial batch is dropped
            index = index[shard[0]::shard[1]]
            batch = self.normalise(images[index])
            if augment:
                batch = _augment(batch, generator)
            yield batch, labels[index]


def _augment(batch: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    n, _, height, width = batch.shape
    pad = max(1, height // 8)
    padded = torch.nn.functional.pad(batch, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(batch.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(batch.device)
    rows = (dy[:, None] + torch.arange(height, device=batch.device))[:, None, :, None]
    columns = (dx[:, None] + torch.arange(width, device=batch.device))[:, None, None, :]
    channel = torch.arange(batch.shape[1], device=batch.device)[None, :, None, None]
    sample = torch.arange(n, device=batch.device)[:, None, None, None]
    cropped = padded[sample, channel, rows, columns]
    flip = torch.rand(n, generator=generator).to(batch.device) < 0.5
    return torch.where(flip[:, None, None, None], cropped.flip(-1), cropped)
