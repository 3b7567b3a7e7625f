"""The image data sets, by name: one registry for `wgan train` (samplers for the engine) and `wgan score`
(a split as reference images). Both look in the same data directory: `--data-dir`, else $WGAN_DATA_DIR, else
./data (plus the system folders of formats.SYSTEM_DIRS, such as Debian's /usr/share/datasets/fashion-mnist).

In-memory sets (MNIST, Fashion-MNIST, CIFAR-10/100, SVHN) are read once with formats.py's readers and held on the
device; streamed sets (CelebA, LSUN, `folder:PATH`) are read file by file through DataLoader workers.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from wgan_cli.data.formats import (Split, celeba_files, folder_files, holdout, load_cifar, load_mnist_like,
                                   load_svhn, lsun_sources, verify_files)
from wgan_cli.data.pixels import resize_uint8
from wgan_cli.data.samplers import DeviceImages, ImageFiles, StreamImages
from wgan_cli.errors import UsageError

DATA_DIR_ENV = "WGAN_DATA_DIR"


@dataclass(frozen=True)
class Dataset:
    size: int                     # the images' own size (the default size of architectures that follow it)
    n_classes: int = 0
    # in-memory sets: (root, download) -> (train split, test split or None, folder the files were found in)
    read: Callable[[Path, bool], tuple[Split, Split | None, Path]] | None = None


DATASETS = {
    "mnist": Dataset(28, 10, functools.partial(load_mnist_like, "mnist")),
    "fashion-mnist": Dataset(28, 10, functools.partial(load_mnist_like, "fashion-mnist")),
    "cifar10": Dataset(32, 10, functools.partial(load_cifar, "cifar10")),
    "cifar100": Dataset(32, 100, functools.partial(load_cifar, "cifar100")),
    "svhn": Dataset(32, 10, load_svhn),
    "celeba": Dataset(64),
    "lsun-bedroom": Dataset(64),
}
FOLDER = Dataset(64)   # folder:PATH
DATASET_NAMES = tuple(DATASETS) + ("folder:PATH",)


def split_names() -> tuple[str, ...]:
    """The data sets whose splits can be named as NAME:train / NAME:test (the in-memory ones)."""
    return tuple(name for name, d in DATASETS.items() if d.read is not None)


def data_root(data_dir: str | Path | None = None) -> Path:
    """--data-dir, else $WGAN_DATA_DIR, else ./data."""
    return Path(os.path.expanduser(str(data_dir or os.environ.get(DATA_DIR_ENV) or "data")))


def get(name: str) -> Dataset:
    if name in DATASETS:
        return DATASETS[name]
    if name.startswith("folder:") and len(name) > len("folder:"):
        return FOLDER
    raise UsageError(f"unknown dataset {name!r}", f"choose one of: {', '.join(DATASET_NAMES)}")


def load_split(name: str, split: str, data_dir: str | Path | None = None, download: bool = True) -> torch.Tensor:
    """One split of an in-memory data set as uint8 (N, C, H, W), read exactly as `wgan train` reads it."""
    dataset = DATASETS.get(name)
    if dataset is None or dataset.read is None:
        raise UsageError(f"no dataset split {name}:{split}", f"datasets with splits: {', '.join(split_names())}")
    if split not in ("train", "test"):
        raise UsageError(f"{name} has no split {split!r}", f"use {name}:train or {name}:test")
    train, test, folder = dataset.read(data_root(data_dir), download)
    chosen = train if split == "train" else test
    if chosen is None:
        raise UsageError(f"{name}: no {split} split in {folder}", f"use {name}:train")
    return torch.from_numpy(chosen.images.copy())   # IDX buffers are read-only


@dataclass
class ImageData:
    train: object             # a sampler for the engine
    val: object | None        # a sampler of the validation split (Section 5.6), or None
    channels: int
    size: int
    n_classes: int
    n_train: int
    n_val: int
    where: str                # where the files were found
    notes: list = field(default_factory=list)


def load_image_data(name: str, data_dir: str | Path | None, *, size: int, device, batch_size: int,
                    output: str = "tanh", dequantize: bool = False, seed: int = 0, workers: int = 4,
                    strict: bool = False, download: bool = True, need_labels: bool = False,
                    train_images: int | None = None) -> ImageData:
    """`train_images`: train on the first N training images only (Section 5.6's 1,000-image subset); the
    validation split stays whole."""
    dataset = get(name)
    root = data_root(data_dir)
    device = torch.device(device)
    if dataset.read is not None:
        train, test, folder = dataset.read(root, download)
        notes = []
        if test is None:   # no test split on disk: hold out 5% of the training set
            tr, va = holdout(list(range(len(train.images))))
            test = Split(train.images[va], train.labels[va] if train.labels is not None else None)
            train = Split(train.images[tr], train.labels[tr] if train.labels is not None else None)
            notes.append(f"{name}: no test split found; holding out {len(va)} training images for validation")
        if train_images is not None:
            _check_subset(name, train_images, len(train.images))
            train = Split(train.images[:train_images],
                          train.labels[:train_images] if train.labels is not None else None)

        def sampler(split: Split) -> DeviceImages:
            images = resize_uint8(split.images, size).to(device)
            labels = torch.from_numpy(split.labels).to(device) if split.labels is not None else None
            return DeviceImages(images, labels, output, dequantize)

        return ImageData(sampler(train), sampler(test), train.images.shape[1], size, dataset.n_classes,
                         len(train.images), len(test.images), str(folder), notes)
    # streamed sets
    read, labels_train, labels_val, n_classes = None, None, None, 0
    if name == "celeba":
        train_files, val_files = celeba_files(root, download)
        where = str(root / "celeba")
    elif name == "lsun-bedroom":
        reader, train_files, val_reader, val_files = lsun_sources(root)
        read = reader
        where = reader.path
    else:
        folder = Path(os.path.expanduser(name[len("folder:"):]))
        files, labels, classes = folder_files(folder)
        tr, va = holdout(list(range(len(files))))
        train_files, val_files = [files[i] for i in tr], [files[i] for i in va]
        if labels is not None:
            labels_train, labels_val = [labels[i] for i in tr], [labels[i] for i in va]
            n_classes = len(classes)
        where = str(folder)
    if need_labels and labels_train is None:
        raise UsageError(f"--conditional needs class labels, and {name} has none",
                         "use a labelled dataset (cifar10, mnist, ...) or a folder with one subfolder per class")
    if train_images is not None:
        _check_subset(name, train_images, len(train_files))
        train_files = train_files[:train_images]
        labels_train = labels_train[:train_images] if labels_train is not None else None
    channels = 3
    if strict:
        verify_files(train_files + val_files, read)
    train_ds = ImageFiles(train_files, labels_train, size, channels, read)
    train = StreamImages(train_ds, batch_size, device, output, dequantize, seed, workers)
    val = None
    if val_files and len(val_files) >= batch_size:
        val_read = val_reader if name == "lsun-bedroom" else read
        val = StreamImages(ImageFiles(val_files, labels_val, size, channels, val_read), batch_size, device,
                           output, dequantize, seed=0, workers=0)
    notes = [] if val else [f"{name}: validation split has {len(val_files)} images (< one batch); no "
                            "validation estimate"]
    return ImageData(train, val, channels, size, n_classes, len(train_files), len(val_files), where, notes)


def _check_subset(name: str, n: int, available: int) -> None:
    if not 1 <= n <= available:
        raise UsageError(f"--train-images {n}: {name} has {available} training images",
                         f"choose at most {available}, or drop --train-images")
