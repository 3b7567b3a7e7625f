"""Samplers that feed the engine real images: `sample(n, gen) -> (x, labels or None)` plus a resumable state.

Small sets (MNIST, Fashion-MNIST, CIFAR-10/100, SVHN) are held on the device as uint8 (DeviceImages); a batch is
drawn there with indices from the engine's generator, and dequantised and scaled there (no host round trip per
step). Large sets (CelebA, LSUN, a folder of images) stream through DataLoader workers into pinned memory
(StreamImages), in an order fixed by (seed, epoch) so that a resumed run reads the same images.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from wgan_cli.data.formats import read_file
from wgan_cli.data.pixels import scale_real
from wgan_cli.errors import DataError


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
        self.read = read or read_file

    def __len__(self) -> int:
        return len(self.files)

    def load(self, i: int):
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


def _resize_crop(img, size: int) -> torch.Tensor:
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
