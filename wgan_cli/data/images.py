"""The image data sets, by name: one registry for `wgan train` (samplers for the engine) and `wgan score`
(a split as reference images). Both look in the same data directory: `--data-dir`, else $WGAN_DATA_DIR, else
./data (plus the system folders of formats.SYSTEM_DIRS, such as Debian's /usr/share/datasets/fashion-mnist).

In-memory sets (MNIST, Fashion-MNIST, CIFAR-10/100, SVHN) are read once with formats.py's readers and held on the
device. Sets of image files (CelebA, LSUN, `folder:PATH`) are decoded once into a prepared set in the cache
(data/prepared.py), which a path to a set made by `wgan prepare` names directly; a prepared set that fits the
memory budget is held on the device like the in-memory sets, a larger one is read from its memory map by
DataLoader workers in the seeded order.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

import numpy as np

from wgan_cli.data.decode import Decoding
from wgan_cli.data.formats import (Split, celeba_files, holdout, load_cifar, load_mnist_like, load_svhn,
                                   lsun_sources)
from wgan_cli.data.pixels import resize_uint8
from wgan_cli.data.prepared import (Prepared, Source, cached, is_prepared, list_folder, open_prepared, summary_text,
                                    usable_cpus)
from wgan_cli.data.samplers import DeviceImages, PreparedRows, StreamImages
from wgan_cli.errors import DataError, UsageError

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
    path = Path(os.path.expanduser(name))
    if is_prepared(path):   # a set made by `wgan prepare`
        return Dataset(open_prepared(path).manifest["size"])
    raise UsageError(f"unknown dataset {name!r}", f"choose one of: {', '.join(DATASET_NAMES)}, or the folder "
                     "of a set made by `wgan prepare`")


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
    skipped: list = field(default_factory=list)   # files that gave no image when the set was prepared
    digest: str = ""          # of a prepared set's pixels and labels: what identifies the data on resume
    source: str = ""          # the resolved source of a prepared set (folder:/abs/path, ...)
    in_memory: bool = True
    info: list = field(default_factory=list)      # what was prepared or reused (notes that are no warning)


def load_image_data(name: str, data_dir: str | Path | None, *, size: int, device, batch_size: int,
                    pixel_range: str = "tanh", dequantize: bool = False, seed: int = 0, workers: int = 4,
                    strict: bool = False, download: bool = True, need_labels: bool = False,
                    train_images: int | None = None, val_share: float = 0.05, memory_budget: float = 4.0,
                    progress=None) -> ImageData:
    """`train_images`: train on the first N training images only (Section 5.6's 1,000-image subset); the
    validation split stays whole. Sets of image files (folders, CelebA, LSUN, a prepared set) hold out
    `val_share` for validation where they have no split of their own, and are held on the device when they fit
    `memory_budget` GiB."""
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
            return DeviceImages(images, labels, pixel_range, dequantize)

        return ImageData(sampler(train), sampler(test), train.images.shape[1], size, dataset.n_classes,
                         len(train.images), len(test.images), str(folder), notes)
    # sets of image files: prepared once (data/prepared.py), then in memory or memory-mapped
    train_set, val_set, where, source, info = _prepared_sets(name, root, download, size=size, workers=workers,
                                                             strict=strict, progress=progress)
    data = _from_prepared(name, train_set, val_set, where, size=size, device=device, batch_size=batch_size,
                          pixel_range=pixel_range, dequantize=dequantize, seed=seed, workers=workers,
                          need_labels=need_labels, train_images=train_images, val_share=val_share,
                          memory_budget=memory_budget)
    data.source, data.info = source, info
    return data


@dataclass
class SearchedImages:
    """What `wgan score --nearest` compares a generator's samples with, at the generator's size."""

    train: torch.Tensor       # uint8 (N, C, size, size): the training images searched, in the order training has
    heldout: torch.Tensor     # uint8 (M, C, size, size): real images of the same set that training never saw
    own: bool                 # the checkpoint's own data set (then `train` is what it trained on, subset and all)
    train_from: str           # which images were searched, in words
    heldout_from: str


def searched_images(name: str, data_dir: str | Path | None, *, size: int, recorded: dict, max_heldout: int,
                    download: bool = True, workers: int = 4, progress=None) -> SearchedImages:
    """The training and held-out images of data set `name` (as `--dataset` names it) exactly as `wgan train`
    selects them: the train split (a folder or prepared set: all but its held-out share) and the test split (the
    held-out share); the first `max_heldout` of the held-out images. `recorded` is a checkpoint's `extra`: when it
    trained on this set, its --train-images subset (and, for image files, its --val-share) are applied."""
    dataset = get(name)
    root = data_root(data_dir)
    if dataset.read is not None:
        own = recorded.get("dataset") == name
        train, test, folder = dataset.read(root, download)
        train_rows, held_from = train.images, f"the {name} test split"
        if test is None:   # as load_image_data: 5% of the training split held out
            tr, va = holdout(list(range(len(train.images))))
            train_rows, test = train.images[tr], Split(train.images[va], None)
            held_from = f"5% of the {name} training split (no test split found), held out as in training"
        subset = recorded.get("train_images") if own else None
        if subset is not None:
            _check_subset(name, subset, len(train_rows))
            train_rows = train_rows[:subset]
        what = f"the first {subset} {name} training images (the checkpoint's --train-images)" if subset is not None \
            else f"all {len(train_rows)} {name} training images"
        return SearchedImages(resize_uint8(train_rows, size), resize_uint8(test.images[:max_heldout], size), own,
                              what, held_from)
    train_set, val_set, where, source, _ = _prepared_sets(name, root, download, size=size, workers=workers,
                                                          strict=False, progress=progress)
    own = recorded.get("data_source") == source
    images = train_set.images   # (N, H, W, C) memory map
    if val_set is None:
        share = recorded.get("val_share", 0.05) if own else 0.05
        train_idx, val_idx = holdout(list(range(len(images))), share) if share > 0 else (list(range(len(images))), [])
        val_images, held_from = images, f"the {len(val_idx)} images of {source} held out in training " \
            f"(--val-share {share:g})"
    else:
        train_idx, val_idx = list(range(len(images))), list(range(len(val_set.images)))
        val_images, held_from = val_set.images, f"the {source} validation split"
    subset = recorded.get("train_images") if own else None
    if subset is not None:
        _check_subset(name, subset, len(train_idx))
        train_idx = train_idx[:subset]
    what = f"{len(train_idx)} training images of {source}" + \
        (" (the checkpoint's --train-images)" if subset is not None else "")

    def rows(src: np.ndarray, idx: list) -> torch.Tensor:
        picked = np.asarray(src[np.asarray(idx, dtype=np.int64)]) if idx else np.zeros((0, *src.shape[1:]), np.uint8)
        return resize_uint8(picked.transpose(0, 3, 1, 2), size)

    return SearchedImages(rows(images, train_idx), rows(val_images, val_idx[:max_heldout]), own, what, held_from)


def folder_path(name: str) -> Path:
    return Path(os.path.expanduser(name[len("folder:"):]))


def _prepared_sets(name: str, root: Path, download: bool, *, size: int, workers: int, strict: bool, progress):
    """(train, validation or None, where, identity, notes): the prepared copies of a set of image files; the
    identity is the resolved source (`folder:/abs/path`, a prepared set's resolved path, celeba, lsun-bedroom)."""
    how = Decoding(size)
    if name in DATASETS:   # celeba, lsun-bedroom: RGB sets with their own validation split
        if name == "celeba":
            train_files, val_files = celeba_files(root, download)
            folder = root / "celeba" / "img_align_celeba"
            sources = [files_source(f"celeba:{split}", folder, files)
                       for split, files in (("train", train_files), ("val", val_files))]
            where = str(root / "celeba")
        else:
            reader, train_keys, val_reader, val_keys = lsun_sources(root)
            sources = [lmdb_source("lsun-bedroom:train", reader, train_keys)]
            if val_reader is not None:
                sources.append(lmdb_source("lsun-bedroom:val", val_reader, val_keys))
            where = reader.path
        made, notes = [], []
        for source in sources:
            if not source.items:
                made.append(None)
                continue
            prepared_set, said = cached(source, how, workers=min(max(1, workers), usable_cpus()), strict=strict, channels="3",
                                        progress=progress)
            made.append(prepared_set)
            notes += said
        return made[0], (made[1] if len(made) > 1 else None), where, name, notes
    if name.startswith("folder:"):
        source = list_folder(folder_path(name))
        prepared_set, notes = cached(source, how, workers=min(max(1, workers), usable_cpus()), strict=strict, progress=progress)
        return prepared_set, None, source.root, source.name, notes
    prepared_set = open_prepared(Path(os.path.expanduser(name)))
    where = str(prepared_set.path.resolve())
    return prepared_set, None, where, where, []


def _from_prepared(name: str, train_set: Prepared, val_set: Prepared | None, where: str, *,
                   size: int, device, batch_size: int, pixel_range: str, dequantize: bool, seed: int, workers: int,
                   need_labels: bool, train_images: int | None, val_share: float, memory_budget: float) -> ImageData:
    """Samplers over prepared sets: on the device when train and validation fit `memory_budget` (GiB), drawn
    with the engine's generator as the in-memory sets are; otherwise read from the memory map by workers in the
    seeded order (StreamImages)."""
    notes: list = []
    images, labels = train_set.images, train_set.labels
    n_classes = len(train_set.manifest["classes"]) if labels is not None else 0
    if need_labels and labels is None:
        raise UsageError(f"--conditional needs class labels, and {name} has none",
                         "use a labelled dataset (cifar10, mnist, ...) or a folder with one subfolder per class")
    if val_set is None:   # no validation split of its own: hold out a share (--val-share)
        train_idx, val_idx = holdout(list(range(len(images))), val_share) if val_share > 0 else \
            (list(range(len(images))), [])
        val_images, val_labels = images, labels
    else:
        train_idx, val_idx = list(range(len(images))), list(range(len(val_set.images)))
        val_images, val_labels = val_set.images, val_set.labels
    if train_images is not None:
        _check_subset(name, train_images, len(train_idx))
        train_idx = train_idx[:train_images]
    stored = images.shape[1]
    row_bytes = size * size * images.shape[3]
    in_memory = (len(train_idx) + len(val_idx)) * row_bytes <= memory_budget * 2**30
    channels = images.shape[3]

    def on_device(src: np.ndarray, lab: np.ndarray | None, idx: list) -> DeviceImages:
        rows = np.asarray(src[np.asarray(idx, dtype=np.int64)]) if idx != list(range(len(src))) else np.asarray(src)
        x = resize_uint8(rows.transpose(0, 3, 1, 2), size).to(device)
        y = torch.from_numpy(np.asarray(lab)[idx]).to(device) if lab is not None else None
        return DeviceImages(x, y, pixel_range, dequantize)

    if in_memory:
        train = on_device(images, labels, train_idx)
        val = on_device(val_images, val_labels, val_idx) if val_idx else None
    else:
        if stored != size:
            raise DataError(f"{where}: prepared at {stored}x{stored}; this run needs {size}x{size} and the set is "
                            f"larger than --memory-budget {memory_budget:g} GiB (resizing happens in memory)",
                            f"prepare it at --size {size}, or raise --memory-budget")
        usable = usable_cpus()
        if workers > usable:
            notes.append(f"--workers {workers}: this machine lets the process use {usable} CPUs; using {usable}")
            workers = usable
        val_path = val_set.path if val_set is not None else train_set.path
        if len(train_idx) < batch_size:
            held = f" ({len(val_idx)} more held out for validation, --val-share {val_share:g})" \
                if val_set is None and val_idx else ""
            raise DataError(f"{name}: {len(train_idx)} training images{held}, fewer than one batch of {batch_size}",
                            "add images, lower --batch-size or --val-share")
        train = StreamImages(PreparedRows(train_set.path, train_idx, labels), batch_size, device, pixel_range,
                             dequantize, seed, workers)
        val = None
        if val_idx and len(val_idx) * row_bytes <= memory_budget * 2**30:
            val = on_device(val_images, val_labels, val_idx)
        elif len(val_idx) >= batch_size:
            val = StreamImages(PreparedRows(val_path, val_idx, val_labels), batch_size, device, pixel_range,
                               dequantize, seed=0, workers=0)
    skipped = list(train_set.skipped) + (list(val_set.skipped) if val_set is not None else [])
    if skipped:
        notes.append(f"{name}: {summary_text(skipped)} (named in {train_set.path / 'manifest.json'})")
    if val is None:
        notes.append(f"{name}: no validation split (--val-share {val_share:g} of {len(images)} images holds out "
                     f"{len(val_idx)}); no validation estimate")
    digest = train_set.digest + (" " + val_set.digest if val_set is not None else "")
    return ImageData(train, val, channels, size, n_classes, len(train_idx), len(val_idx), where, notes,
                     skipped=skipped, digest=digest, in_memory=in_memory)


def files_source(name: str, folder: Path, files: list[Path]) -> Source:
    """A list of image files (CelebA's partition) as a preparation source; a file that cannot be listed is a
    problem with its reason."""
    items, names, entries, problems = [], [], [], []
    for path in files:
        rel = os.path.relpath(path, folder)
        try:
            st = os.stat(path)
        except OSError as e:
            problems.append([rel, "cannot be read", e.strerror or str(e)])
            continue
        items.append(str(path))
        names.append(rel)
        entries.append([rel, st.st_size, st.st_mtime_ns])
    return Source(name, items, names, entries=entries, problems=problems, root=str(folder))


def lmdb_source(name: str, reader, keys: list) -> Source:
    """An LSUN LMDB as a preparation source: identified by its data file's size and modification time."""
    st = os.stat(Path(reader.path) / "data.mdb")
    return Source(name, keys, [k.decode("latin1") for k in keys], entries=[["data.mdb", st.st_size, st.st_mtime_ns]],
                  read=reader)


def _check_subset(name: str, n: int, available: int) -> None:
    if not 1 <= n <= available:
        raise UsageError(f"--train-images {n}: {name} has {available} training images",
                         f"choose at most {available}, or drop --train-images")
