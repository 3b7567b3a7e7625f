"""Image datasets for `wgan train`, and the samplers that feed the engine.

Small sets (MNIST, Fashion-MNIST, CIFAR-10/100, SVHN) are read once into a uint8 tensor (N, C, H, W) held on
the device; a batch is drawn there with indices from the engine's generator, and dequantised and scaled there
(no host round trip per step). Large sets (CelebA, LSUN, a folder of images) stream through DataLoader workers
into pinned memory, in an order fixed by (seed, epoch) so that a resumed run reads the same images.

Files are read in each dataset's own on-disk format, in the layout torchvision's download writes (so a
`torchvision.datasets.X(root, download=True)` folder works, and so does a copy made by hand or by a distribution
package such as Debian's dataset-fashion-mnist). Where the files are absent and the machine is online,
torchvision downloads them. CIFAR's python batches are pickles: they are read with an unpickler that builds
nothing but dicts, lists, strings and numpy arrays.

`to_uint8_nhwc` is the one conversion from generator output to pixels (the official code's int((g+1)*255.99/2),
or int(g*255.99) for the sigmoid output of the MNIST nets); `wgan sample` and `wgan score` use it.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from wgan_cli.errors import DataError, UsageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}
SYSTEM_DIRS = {
    "fashion-mnist": ["/usr/share/datasets/fashion-mnist"],
    "mnist": ["/usr/share/datasets/mnist"],
}
IN_MEMORY = ("mnist", "fashion-mnist", "cifar10", "cifar100", "svhn")
STREAMED = ("celeba", "lsun-bedroom")
DATASET_NAMES = IN_MEMORY + STREAMED + ("folder:PATH",)
NATIVE_SIZE = {"mnist": 28, "fashion-mnist": 28, "cifar10": 32, "cifar100": 32, "svhn": 32, "celeba": 64,
               "lsun-bedroom": 64}
N_CLASSES = {"mnist": 10, "fashion-mnist": 10, "cifar10": 10, "cifar100": 100, "svhn": 10}


# ---- generator output <-> pixels ---------------------------------------------------------------------------


def to_uint8(x: torch.Tensor, output: str = "tanh") -> torch.Tensor:
    """Generator output -> uint8 exactly as a saved image, same layout and device:
    tanh int((g+1)*255.99/2), sigmoid int(g*255.99)."""
    scaled = (x.detach().float() + 1) * (255.99 / 2) if output == "tanh" else x.detach().float() * 255.99
    return scaled.clamp(0, 255).to(torch.uint8)   # the cast truncates, as int() does


def to_uint8_nhwc(x: torch.Tensor, output: str = "tanh") -> np.ndarray:
    """(B, C, H, W) generator output -> (B, H, W, C) uint8 numpy, for PNG and npz files."""
    return to_uint8(x, output).cpu().permute(0, 2, 3, 1).numpy()


def scale_real(x: torch.Tensor, output: str, dequantize: bool, gen: torch.Generator | None) -> torch.Tensor:
    """uint8 (B, C, H, W) -> the generator's range. Dequantised as gan_cifar_resnet.py: 2*(x/256 - .5) + U(0, 1/128);
    otherwise gan_cifar.py's 2*(x/255 - .5); [0, 1] for the sigmoid MNIST nets."""
    x = x.float()
    if dequantize:
        u = torch.rand(x.shape, device=x.device, generator=gen)
        x = (x + u) / 256.0   # x/256 + U(0, 1/256)
    else:
        x = x / 255.0
    return x if output == "sigmoid" else 2.0 * x - 1.0


# ---- device-resident data ----------------------------------------------------------------------------------


class DeviceImages:
    """uint8 images on the device; `sample` draws indices with the caller's generator (with replacement)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None, output: str = "tanh",
                 dequantize: bool = False):
        self.images, self.labels = images, labels   # (N, C, H, W) uint8, (N,) int64
        self.output, self.dequantize = output, dequantize
        self.device = images.device

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, n: int, gen: torch.Generator):
        idx = torch.randint(0, len(self.images), (n,), device=self.device, generator=gen)
        x = scale_real(self.images[idx], self.output, self.dequantize, gen)
        return x, (self.labels[idx] if self.labels is not None else None)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


# ---- streamed data -----------------------------------------------------------------------------------------


class ImageFiles(torch.utils.data.Dataset):
    """Images decoded with PIL, resized (shorter side) and centre-cropped to `size`; returns (uint8 CHW, label,
    path of a skipped unreadable file or "").

    A file that fails to decode is replaced by the next readable one (deterministic, so resume stays exact)
    and reported; with `strict` every file was verified before training instead."""

    def __init__(self, files: list, labels: list | None, size: int, channels: int, read=None):
        self.files, self.labels, self.size, self.channels = files, labels, size, channels
        self.read = read or _read_file

    def __len__(self) -> int:
        return len(self.files)

    def load(self, i: int):
        from PIL import Image

        img = Image.open(io.BytesIO(self.read(self.files[i])))
        img = img.convert("L" if self.channels == 1 else "RGB")
        return _resize_crop(img, self.size)

    def __getitem__(self, i: int):
        skipped = []
        for k in range(min(50, len(self.files))):
            j = (i + k) % len(self.files)
            try:
                x = self.load(j)
            except Exception:   # any decoder failure: PIL raises many types
                skipped.append(str(self.files[j]))
                continue
            label = self.labels[j] if self.labels is not None else -1
            return x, label, "\n".join(skipped)
        raise DataError(f"50 images in a row could not be read (first: {skipped[0]})",
                        "check the dataset folder; the files may be damaged or not images")


def _read_file(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _resize_crop(img, size: int) -> torch.Tensor:
    from PIL import Image

    w, h = img.size
    scale = size / min(w, h)
    if (w, h) != (size, size):
        img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
        w, h = img.size
        left, top = (w - size) // 2, (h - size) // 2
        img = img.crop((left, top, left + size, top + size))
    arr = np.asarray(img, dtype=np.uint8)
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)   # (C, H, W)


class _OrderedBatches(torch.utils.data.Sampler):
    """Index batches of a permutation fixed by (seed, epoch), starting at `start` samples into the epoch."""

    def __init__(self, n: int, batch: int, seed: int, epoch: int, start: int):
        self.n, self.batch, self.seed, self.epoch, self.start = n, batch, seed, epoch, start

    def __iter__(self):
        epoch, pos = self.epoch, self.start
        while True:
            perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100003 + epoch))
            while pos + self.batch <= self.n:
                yield perm[pos: pos + self.batch].tolist()
                pos += self.batch
            epoch, pos = epoch + 1, 0   # drop the last partial batch, as the official loaders do


class StreamImages:
    """A DataLoader over ImageFiles; the cursor (epoch, position) is part of the train state."""

    def __init__(self, dataset: ImageFiles, batch_size: int, device, output: str = "tanh", dequantize: bool = False,
                 seed: int = 0, workers: int = 4):
        self.dataset, self.batch_size, self.device = dataset, batch_size, torch.device(device)
        self.output, self.dequantize, self.seed, self.workers = output, dequantize, seed, workers
        if len(dataset) < batch_size:
            raise DataError(f"the dataset has {len(dataset)} images, fewer than one batch of {batch_size}",
                            "add images or lower --batch-size")
        self.epoch, self.pos = 0, 0
        self.skipped: list[str] = []
        self._iter = None

    def __len__(self) -> int:
        return len(self.dataset)

    def _loader(self):
        sampler = _OrderedBatches(len(self.dataset), self.batch_size, self.seed, self.epoch, self.pos)
        return iter(torch.utils.data.DataLoader(
            self.dataset, batch_sampler=sampler, num_workers=self.workers,
            pin_memory=self.device.type == "cuda", persistent_workers=False,
            prefetch_factor=4 if self.workers else None))

    def sample(self, n: int, gen: torch.Generator):
        if n != self.batch_size:
            raise ValueError(f"streamed data gives batches of {self.batch_size}, asked for {n}")
        if self._iter is None:
            self._iter = self._loader()
        x, y, bad = next(self._iter)
        self.skipped += [p for entry in bad if entry for p in entry.split("\n")]
        self.pos += n
        if self.pos + n > len(self.dataset):
            self.epoch, self.pos = self.epoch + 1, 0
        x = scale_real(x.to(self.device, non_blocking=True), self.output, self.dequantize, gen)
        labels = y.to(self.device, non_blocking=True) if self.dataset.labels is not None else None
        return x, labels

    def state_dict(self) -> dict:
        return {"cursor": torch.tensor([self.epoch, self.pos], dtype=torch.int64)}

    def load_state_dict(self, state: dict) -> None:
        if "cursor" in state:
            self.epoch, self.pos = (int(v) for v in state["cursor"].tolist())
            self._iter = None

    def rewind(self) -> None:
        """Back to the first batch (used for the validation split: the same images at every evaluation)."""
        self.epoch, self.pos, self._iter = 0, 0, None


# ---- readers for each on-disk format -----------------------------------------------------------------------


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format), gzipped or not: big-endian magic, dims, then uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
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


@dataclass
class Source:
    """Where a dataset's files are looked for, how to read them, and how to fetch them."""

    name: str
    candidates: list[Path]
    hint: str
    found: Path | None = None
    notes: list[str] = field(default_factory=list)


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
    import scipy.io

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
        except (OSError, ValueError, KeyError, TypeError, NotImplementedError) as e:
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


def folder_files(folder: Path) -> tuple[list[Path], list[int] | None, list[str]]:
    """Every image under `folder`, recursively; labels from the top-level subfolders when all images are in them."""
    if not folder.is_dir():
        raise DataError(f"folder:{folder}: no such directory", "give folder:PATH with a directory of images")
    files = list_images(folder)
    if not files:
        raise DataError(f"folder:{folder}: no images found (looked recursively for "
                        f"{', '.join(sorted(IMAGE_SUFFIXES))})", "put PNG or JPEG files in the folder")
    classes = sorted({p.relative_to(folder).parts[0] for p in files if len(p.relative_to(folder).parts) > 1})
    if classes and all(len(p.relative_to(folder).parts) > 1 for p in files) and len(classes) > 1:
        index = {c: i for i, c in enumerate(classes)}
        return files, [index[p.relative_to(folder).parts[0]] for p in files], classes
    return files, None, []


def verify_files(files: list, read=None) -> None:
    """--strict: decode every image before training; the first bad one stops the run with its name."""
    from PIL import Image

    read = read or _read_file
    for path in files:
        try:
            Image.open(io.BytesIO(read(path))).load()
        except Exception as e:
            raise DataError(f"{path}: cannot be read as an image ({type(e).__name__}: {e})",
                            "remove or replace the file, or drop --strict to skip unreadable images") from None


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
            import lmdb

            self.env = lmdb.open(self.path, readonly=True, lock=False, readahead=False, meminit=False)
        with self.env.begin(write=False) as txn:
            value = txn.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __getstate__(self):
        return {"path": self.path, "env": None}

    def keys(self) -> list[bytes]:
        import lmdb

        env = lmdb.open(self.path, readonly=True, lock=False, readahead=False, meminit=False)
        with env.begin(write=False) as txn:
            keys = [k for k, _ in txn.cursor()]
        env.close()
        return keys


def lsun_sources(root: Path) -> tuple[LmdbReader, list, LmdbReader | None, list]:
    try:
        import lmdb  # noqa: F401
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


# ---- one entry point ---------------------------------------------------------------------------------------


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


def native_size(name: str) -> int:
    return 64 if name.startswith("folder:") else NATIVE_SIZE[name]


def check_name(name: str) -> None:
    if name in IN_MEMORY or name in STREAMED:
        return
    if name.startswith("folder:") and len(name) > len("folder:"):
        return
    raise UsageError(f"unknown dataset {name!r}", f"choose one of: {', '.join(DATASET_NAMES)}")


def resize_uint8(images: np.ndarray, size: int) -> torch.Tensor:
    """(N, C, h, w) uint8 -> (N, C, size, size) uint8 (bilinear, antialiased), in chunks to bound memory."""
    x = torch.from_numpy(np.array(images, dtype=np.uint8, copy=True))   # IDX buffers are read-only
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    out = torch.empty((len(x), x.shape[1], size, size), dtype=torch.uint8)
    for i in range(0, len(x), 4096):
        chunk = F.interpolate(x[i: i + 4096].float(), size=(size, size), mode="bilinear", antialias=True,
                              align_corners=False)
        out[i: i + 4096] = chunk.round().clamp(0, 255).to(torch.uint8)
    return out


def load_image_data(name: str, data_dir: str | Path, *, size: int, device, batch_size: int, output: str = "tanh",
                    dequantize: bool = False, seed: int = 0, workers: int = 4, strict: bool = False,
                    download: bool = True, need_labels: bool = False) -> ImageData:
    check_name(name)
    root = Path(os.path.expanduser(str(data_dir)))
    device = torch.device(device)
    if name in IN_MEMORY:
        if name in ("mnist", "fashion-mnist"):
            train, test, folder = load_mnist_like(name, root, download)
        elif name == "svhn":
            train, test, folder = load_svhn(root, download)
        else:
            train, test, folder = load_cifar(name, root, download)
        notes = []
        if test is None:   # no test split on disk: hold out 5% of the training set
            tr, va = holdout(list(range(len(train.images))))
            test = Split(train.images[va], train.labels[va] if train.labels is not None else None)
            train = Split(train.images[tr], train.labels[tr] if train.labels is not None else None)
            notes.append(f"{name}: no test split found; holding out {len(va)} training images for validation")

        def sampler(split: Split) -> DeviceImages:
            images = resize_uint8(split.images, size).to(device)
            labels = torch.from_numpy(split.labels).to(device) if split.labels is not None else None
            return DeviceImages(images, labels, output, dequantize)

        return ImageData(sampler(train), sampler(test), train.images.shape[1], size, N_CLASSES[name],
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
        order = list(range(len(files)))
        tr, va = holdout(order)
        train_files, val_files = [files[i] for i in tr], [files[i] for i in va]
        if labels is not None:
            labels_train, labels_val = [labels[i] for i in tr], [labels[i] for i in va]
            n_classes = len(classes)
        where = str(folder)
    if need_labels and labels_train is None:
        raise UsageError(f"--conditional needs class labels, and {name} has none",
                         "use a labelled dataset (cifar10, mnist, ...) or a folder with one subfolder per class")
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
