"""Readers for each data set's own on-disk format, in the layout torchvision's downloaders write (so a
`torchvision.datasets.X(root, download=True)` folder works, and so does a copy made by hand or by a distribution
package such as Debian's dataset-fashion-mnist). Where the files are absent and the machine is online, the
torchvision downloader fetches them. CIFAR's python batches are pickles: they are read with an unpickler that
builds nothing but dicts, lists, strings and numpy arrays.
"""

from __future__ import annotations

import gzip
import pickle
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wgan_cli.errors import DataError

# image files wgan reads (folder data sets, `wgan score` folders)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}
SYSTEM_DIRS = {
    "fashion-mnist": ["/usr/share/datasets/fashion-mnist"],
    "mnist": ["/usr/share/datasets/mnist"],
}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format), gzipped or not: big-endian magic, dims, then uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:   # zlib.error: damaged compressed data inside a valid gzip
        raise DataError(f"{path}: cannot read ({e})", "the file is damaged; download it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not a uint8 IDX file", "expected MNIST's train-images-idx3-ubyte format")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path}: holds {data.size} bytes of data, its header promises {int(np.prod(dims))}",
                        "the file is truncated; download it again")
    return data.reshape(dims)


class _ArrayUnpickler(pickle.Unpickler):
    """Builds only what CIFAR's batches hold: dicts, lists, str/bytes and numpy arrays. Anything else (the
    way a malicious pickle runs code) is refused."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to build {module}.{name}")


def read_cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            d = _ArrayUnpickler(f, encoding="latin1").load()
        data = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(d[label_key], dtype=np.int64)
    except (OSError, EOFError, KeyError, ValueError, TypeError, pickle.UnpicklingError) as e:
        raise DataError(f"{path}: not a CIFAR python batch ({e})",
                        "the file is damaged or not from cifar-*-python.tar.gz; download it again") from None
    return data, labels


@dataclass
class Split:
    images: np.ndarray              # (N, C, H, W) uint8
    labels: np.ndarray | None       # (N,) int64


def _first_existing(dirs: list[Path], needed: list[str]) -> Path | None:
    for d in dirs:
        if all((d / f).exists() or (d / (f + ".gz")).exists() for f in needed):
            return d
    return None


def _idx_file(folder: Path, stem: str) -> Path:
    plain = folder / stem
    return plain if plain.exists() else folder / (stem + ".gz")


MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def load_mnist_like(name: str, root: Path, download: bool) -> tuple[Split, Split, Path]:
    tv_name = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}[name]
    dirs = [root / tv_name / "raw", root / name, root] + [Path(p) for p in SYSTEM_DIRS.get(name, [])]
    needed = list(MNIST_FILES["train"] + MNIST_FILES["test"])
    folder = _first_existing(dirs, needed)
    if folder is None and download:
        _download(lambda: getattr(__import__("torchvision.datasets", fromlist=[tv_name]), tv_name)(
            str(root), train=True, download=True))
        folder = _first_existing(dirs, needed)
    if folder is None:
        apt = " or `apt-get install dataset-fashion-mnist` (Debian)" if name == "fashion-mnist" else ""
        raise DataError(f"{name}: files not found; looked for {', '.join(needed[:1])}[.gz] and the other 3 IDX "
                        f"files in: {', '.join(str(d) for d in dirs)}",
                        f"run once with network access (torchvision downloads into --data-dir){apt}, "
                        f"or put the four .gz files in {root / name}")
    splits = []
    for split in ("train", "test"):
        images_file, labels_file = (_idx_file(folder, s) for s in MNIST_FILES[split])
        images, labels = read_idx(images_file), read_idx(labels_file).astype(np.int64)
        if images.ndim != 3 or len(images) != len(labels):
            raise DataError(f"{images_file}: {images.shape} images for {len(labels)} labels",
                            "the files do not belong together; download them again")
        splits.append(Split(images[:, None], labels))
    return splits[0], splits[1], folder


def load_cifar(name: str, root: Path, download: bool) -> tuple[Split, Split | None, Path]:
    if name == "cifar10":
        sub, train_files, test_files, key, tv = ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)],
                                                 ["test_batch"], "labels", "CIFAR10")
    else:
        sub, train_files, test_files, key, tv = "cifar-100-python", ["train"], ["test"], "fine_labels", "CIFAR100"
    folder = root / sub
    if not all((folder / f).exists() for f in train_files) and download:
        _download(lambda: getattr(__import__("torchvision.datasets", fromlist=[tv]), tv)(str(root), download=True))
    missing = [f for f in train_files if not (folder / f).exists()]
    if missing:
        raise DataError(f"{name}: {folder / missing[0]} not found",
                        f"run once with network access (torchvision downloads into --data-dir), or unpack "
                        f"{name.replace('cifar', 'cifar-')}-python.tar.gz into {root}")
    train = [read_cifar_batch(folder / f, key) for f in train_files]
    test = [read_cifar_batch(folder / f, key) for f in test_files if (folder / f).exists()]
    train_split = Split(np.concatenate([d for d, _ in train]), np.concatenate([l for _, l in train]))
    test_split = Split(np.concatenate([d for d, _ in test]), np.concatenate([l for _, l in test])) if test else None
    return train_split, test_split, folder


def load_svhn(root: Path, download: bool) -> tuple[Split, Split | None, Path]:
    import scipy.io   # deferred: SciPy's loader costs a second, and only SVHN needs it

    dirs = [root / "svhn", root]
    folder = _first_existing(dirs, ["train_32x32.mat"])
    if folder is None and download:
        _download(lambda: __import__("torchvision.datasets", fromlist=["SVHN"]).SVHN(
            str(root / "svhn"), split="train", download=True))
        folder = _first_existing(dirs, ["train_32x32.mat"])
    if folder is None:
        raise DataError(f"svhn: train_32x32.mat not found in {', '.join(map(str, dirs))}",
                        f"run once with network access, or download train_32x32.mat and test_32x32.mat from "
                        f"http://ufldl.stanford.edu/housenumbers/ into {root / 'svhn'}")
    splits = []
    for split in ("train", "test"):
        path = folder / f"{split}_32x32.mat"
        if not path.exists():
            splits.append(None)
            continue
        try:
            mat = scipy.io.loadmat(str(path))
            images = np.transpose(mat["X"], (3, 2, 0, 1)).astype(np.uint8)   # (32, 32, 3, N) -> (N, 3, 32, 32)
            labels = mat["y"].reshape(-1).astype(np.int64) % 10              # SVHN writes digit 0 as 10
        except (OSError, ValueError, KeyError, TypeError, NotImplementedError, zlib.error) as e:
            raise DataError(f"{path}: not an SVHN .mat file ({e})", "download it again") from None
        splits.append(Split(images, labels))
    return splits[0], splits[1], folder


def _download(fn) -> None:
    """torchvision's downloader; offline it fails at once and the caller reports where files were looked for."""
    try:
        fn()
    except Exception:   # no network, a moved URL, a failed checksum: the caller's 'not found' error says what to do
        pass


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def read_file(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def celeba_files(root: Path, download: bool) -> tuple[list[Path], list[Path]]:
    folder = root / "celeba"
    images = folder / "img_align_celeba"
    if not images.is_dir() and download:
        _download(lambda: __import__("torchvision.datasets", fromlist=["CelebA"]).CelebA(str(root), download=True))
    if not images.is_dir():
        raise DataError(f"celeba: {images} not found",
                        f"run once with network access (torchvision downloads from Google Drive), or unpack "
                        f"img_align_celeba.zip and list_eval_partition.txt into {folder}")
    partition = folder / "list_eval_partition.txt"
    if partition.exists():
        train, val = [], []
        for line in partition.read_text().split("\n"):
            parts = line.split()
            if len(parts) == 2:
                (train if parts[1] == "0" else val if parts[1] == "1" else []).append(images / parts[0])
        return train, val
    files = list_images(images)
    return holdout(files)


def holdout(files: list, fraction: float = 0.05) -> tuple[list, list]:
    """A fixed 5% validation split (seed 0, whatever the training seed) for sets that come without one."""
    if len(files) < 2:
        return list(files), []
    perm = torch.randperm(len(files), generator=torch.Generator().manual_seed(0)).tolist()
    k = max(1, int(len(files) * fraction))
    val = sorted(perm[:k])
    val_set = set(val)
    return [files[i] for i in range(len(files)) if i not in val_set], [files[i] for i in val]


class LmdbReader:
    """Reads values of an LSUN LMDB (what torchvision's LSUN reads: keys -> encoded images). Opened lazily in
    each worker process (an LMDB environment must not cross a fork)."""

    def __init__(self, path: Path):
        self.path, self.env = str(path), None

    def __call__(self, key: bytes) -> bytes:
        if self.env is None:
            import lmdb   # the optional `lsun` extra

            self.env = lmdb.open(self.path, readonly=True, lock=False, readahead=False, meminit=False)
        with self.env.begin(write=False) as txn:
            value = txn.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __getstate__(self):
        return {"path": self.path, "env": None}

    def keys(self) -> list[bytes]:
        import lmdb   # the optional `lsun` extra

        env = lmdb.open(self.path, readonly=True, lock=False, readahead=False, meminit=False)
        with env.begin(write=False) as txn:
            keys = [k for k, _ in txn.cursor()]
        env.close()
        return keys


def lsun_sources(root: Path) -> tuple[LmdbReader, list, LmdbReader | None, list]:
    try:
        import lmdb  # noqa: F401 (the optional `lsun` extra)
    except ImportError:
        raise DataError("lsun-bedroom needs the lmdb package", "pip install 'wgan-cli[lsun]' (or pip install lmdb)") \
            from None
    dirs = [root / "bedroom_train_lmdb", root / "lsun" / "bedroom_train_lmdb"]
    train_dir = next((d for d in dirs if (d / "data.mdb").exists()), None)
    if train_dir is None:
        raise DataError(f"lsun-bedroom: no LMDB (data.mdb) in {', '.join(map(str, dirs))}",
                        "download bedroom_train_lmdb.zip with LSUN's download.py (github.com/fyu/lsun) and unzip "
                        f"it into {root}")
    train = LmdbReader(train_dir)
    val_dir = train_dir.parent / "bedroom_val_lmdb"
    val = LmdbReader(val_dir) if (val_dir / "data.mdb").exists() else None
    return train, train.keys(), val, (val.keys() if val else [])
