"""Stand-in data for the tests: small files in each data set's own on-disk format, written on the fly."""

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(root: Path, n_train: int = 64, n_test: int = 32, layout: str = "MNIST/raw") -> Path:
    """torchvision's MNIST layout (ROOT/MNIST/raw/*-ubyte.gz): bright squares whose size is the label."""
    folder = root / layout
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = np.zeros((n, 28, 28), np.uint8)
        for i, k in enumerate(labels):
            images[i, 4:6 + 2 * k, 4:6 + 2 * k] = 255
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    return folder


def write_cifar10(root: Path, per_batch: int = 16) -> Path:
    """cifar-10-batches-py: python pickles of {"data": (N, 3072) uint8, "labels": [int]}."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = rng.integers(0, 10, per_batch)
        data = np.zeros((per_batch, 3, 32, 32), np.uint8)
        data[:, 0] = (labels * 25)[:, None, None]   # the red channel says the class
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data.reshape(per_batch, -1), "labels": labels.tolist(), "batch_label": name}, f,
                        protocol=2)
    return folder


def write_pngs(folder: Path, n: int, size: int = 40, seed: int = 0) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"img{i:03d}.png"
        Image.fromarray(rng.integers(0, 255, (size, size + 8, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths
