"""Inception features of a set of images: where uint8 images come from (ImageSource) and the pass through the
network (`extract`).

A source yields uint8 (B, C, H, W) batches in a fixed order: an in-memory array (.npz/.npy, a dataset split), a
folder of image files (decoded lazily, in a background thread that overlaps decoding with inference), or a
generator (samples drawn from a seed, quantised exactly as saved images are).

Under torchrun `extract` gives each rank a contiguous block of the batches (`batches(bs, keep)` makes only those;
a generator still draws every batch's noise, so each image is the one a single process makes) and gathers the
features in rank order: the same features, in the same order, as one process.
"""

from __future__ import annotations

import queue
import threading
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image

from wgan_cli import models
from wgan_cli.data.decode import Decoding, Skipped, decode
from wgan_cli.data.formats import IMAGE_SUFFIXES
from wgan_cli.data.prepared import is_prepared, open_prepared
from wgan_cli.data.pixels import to_uint8
from wgan_cli.distributed import LOCAL, Group
from wgan_cli.errors import DataError, WganError
from wgan_cli.metrics.inputs import Features

Progress = Callable[[int, int, str], None]   # (done, total, label)


@dataclass
class ImageSource:
    n: int
    batches: Callable[..., Iterator[torch.Tensor]]   # (batch_size, keep=all) -> uint8 (B, C, H, W) batches in order,
    #                                                  only those whose index is in `keep`
    description: str
    background: bool = True   # produce batches in a thread (decoding files overlaps with inference)


def tensor_source(images: torch.Tensor, description: str) -> ImageSource:
    def batches(bs: int, keep: range | None = None):
        return (images[i: i + bs] for k, i in enumerate(range(0, len(images), bs)) if keep is None or k in keep)

    return ImageSource(len(images), batches, description)


def as_nchw(arr: np.ndarray, path: Path) -> torch.Tensor:
    """uint8 (N, H, W), (N, H, W, C) or (N, C, H, W) with C in {1, 3} -> (N, C, H, W)."""
    if arr.dtype != np.uint8:
        raise DataError(f"{path}: images must be uint8 (got {arr.dtype})",
                        "quantise first: uint8 = floor((x + 1) * 127.995) for tanh outputs")
    if arr.ndim == 3:
        arr = arr[:, None]
    elif arr.ndim == 4 and arr.shape[-1] in (1, 3):
        arr = arr.transpose(0, 3, 1, 2)
    elif not (arr.ndim == 4 and arr.shape[1] in (1, 3)):
        raise DataError(f"{path}: expected images of shape (N, H, W, C) or (N, C, H, W) with 1 or 3 channels, "
                        f"got {arr.shape}", "save the array under the key 'images'")
    return torch.from_numpy(np.ascontiguousarray(arr))


def read_array(path: Path) -> torch.Tensor:
    try:   # numpy's np.load refuses object arrays by default: nothing here can run code
        if path.suffix == ".npy":
            arr = np.load(path)
        else:
            with np.load(path) as z:
                if "images" not in z.files:
                    raise DataError(f"{path}: no array named 'images' (found: {', '.join(z.files) or 'none'})",
                                    "np.savez(path, images=uint8_array)")
                arr = z["images"]
    except WganError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, KeyError) as e:
        # a truncated or damaged file: numpy and zipfile raise several types
        raise DataError(f"{path}: cannot read ({str(e).strip() or type(e).__name__})",
                        "the file is damaged or not written by numpy.save / numpy.savez") from None
    except Exception as e:   # zlib.error and other decoder failures of a damaged member
        raise DataError(f"{path}: cannot read ({type(e).__name__}: {e})",
                        "the file is damaged or not written by numpy.save / numpy.savez") from None
    return as_nchw(arr, path)


def array_source(path: Path) -> ImageSource:
    images = read_array(path)
    return tensor_source(images, f"{len(images)} images in {path}")


def folder_source(path: Path) -> ImageSource:
    """Images of one size in a folder (sorted names), decoded lazily batch by batch as `wgan prepare` decodes them
    (data/decode.py: EXIF orientation, 16-bit scaled to 8 bits, alpha on white) but not resized; or a prepared
    set (its memory map). Entries that are not regular files (a FIFO, a link loop) are never opened."""
    if is_prepared(path):
        return prepared_source(path)
    entries = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    files = [p for p in entries if p.is_file()]   # is_file follows links; False for a FIFO or a link loop
    if not files:
        raise DataError(f"{path}: no images in this folder", f"put {', '.join(sorted(IMAGE_SUFFIXES))} files there")
    how = Decoding(size=None)
    first, gray = _decode_file(files[0], how)
    size, channels = first.shape[:2], (1 if gray else 3)

    def decode_one(p: Path) -> np.ndarray:
        arr, is_gray = _decode_file(p, how)
        if arr.shape[:2] != size:
            raise DataError(f"{p}: size {arr.shape[1]}x{arr.shape[0]} differs from {size[1]}x{size[0]} "
                            f"({files[0].name})", "score images of one size")
        if channels == 3:
            return arr
        return arr[:, :, 0] if is_gray else np.asarray(Image.fromarray(arr).convert("L"))

    def batches(bs: int, keep: range | None = None):
        for k, i in enumerate(range(0, len(files), bs)):
            if keep is None or k in keep:
                yield as_nchw(np.stack([decode_one(p) for p in files[i: i + bs]]), path)

    ignored = len(entries) - len(files)
    more = f" ({ignored} entries that are not regular files ignored)" if ignored else ""
    return ImageSource(len(files), batches, f"{len(files)} images in {path}{more}")


def _decode_file(p: Path, how: Decoding) -> tuple[np.ndarray, bool]:
    try:
        return decode(p.read_bytes(), how)
    except Skipped as e:
        detail = f": {e.detail}" if e.detail else ""
        raise DataError(f"{p}: cannot decode ({e.reason}{detail})", "remove or re-save the file") from None
    except OSError as e:
        raise DataError(f"{p}: cannot read ({e.strerror or e})", "check the file's permissions") from None


def prepared_source(path: Path) -> ImageSource:
    """A set made by `wgan prepare` (or the cache): rows of its memory map, batch by batch."""
    prepared = open_prepared(path)
    images = prepared.images

    def batches(bs: int, keep: range | None = None):
        for k, i in enumerate(range(0, len(images), bs)):
            if keep is None or k in keep:
                yield as_nchw(np.array(images[i: i + bs]), path)

    return ImageSource(len(images), batches, f"{len(images)} prepared images in {path}")


def generator_source(G, n: int, seed: int, device: torch.device, pixel_range: str, description: str,
                     balanced: bool = True) -> ImageSource:
    """n samples drawn from `seed`, quantised as saved images are. A class-conditional generator gets
    balanced labels in shuffled order (`balanced`), or labels drawn at random with the noise."""

    def batches(bs: int, keep: range | None = None):
        gen = torch.Generator(device=device).manual_seed(seed)
        labels = None
        if G.n_classes and balanced:
            labels = (torch.arange(n, device=device) % G.n_classes)[torch.randperm(n, generator=gen, device=device)]
        for k, i in enumerate(range(0, n, bs)):
            m = min(bs, n - i)
            z, y = models.latents(G, m, gen, labels[i: i + m] if labels is not None else None)
            if keep is None or k in keep:   # another rank's batch: its noise is drawn all the same
                yield to_uint8(models.generate(G, z, y, chunk=bs), pixel_range)

    return ImageSource(n, batches, description, background=False)   # already on the device


def prefetch(items: Iterator, depth: int = 2) -> Iterator:
    """Produce the next items in a background thread (image decoding overlaps with inference)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()

    def work():
        try:
            for item in items:
                q.put(item)
        except BaseException as e:   # re-raised in the consumer
            q.put(e)
        q.put(done)

    threading.Thread(target=work, daemon=True).start()
    while (item := q.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


@contextmanager
def exact_matmul(device: torch.device):
    """fp32 everywhere: TF32 convolutions (cuDNN's default) would move FID by more than our tolerance."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def extract(net, source: ImageSource, batch_size: int, device: torch.device,
            progress: Progress | None = None, label: str = "features", group: Group = LOCAL) -> Features:
    """Run the network over every batch (under torchrun: this rank's block of them, then every rank's features
    gathered in rank order); features come back to the CPU as float32."""
    pool3, logits = [], []
    done = 0
    keep = group.block(-(-source.n // batch_size))
    expected = min(keep.stop * batch_size, source.n) - min(keep.start * batch_size, source.n)
    if progress:
        progress(0, expected, label)
    made = source.batches(batch_size) if group.world == 1 else source.batches(batch_size, keep)
    batches = prefetch(made) if source.background else made
    if hasattr(net, "begin"):   # metrics/fastpath.FastInception: decides here whether to compile for this pass
        net.begin(expected, batch_size)
    with torch.inference_mode(), exact_matmul(device):
        for images in batches:
            f, lg = net(images.to(device, non_blocking=True))
            pool3.append(f.float().cpu())
            if lg is not None:
                logits.append(lg.float().cpu())
            done += len(images)
            if progress:
                progress(done, expected, label)
    if done != expected:
        raise DataError(f"{source.description}: expected {expected} images, read {done}", "")
    if hasattr(net, "end"):
        net.end()   # records the measured images/s (the next decision and the CPU warning use them)
    if group.world == 1:
        return Features(torch.cat(pool3), torch.cat(logits) if logits else None)
    return Features(group.gather_rows(torch.cat(pool3) if pool3 else None, done),
                    group.gather_rows(torch.cat(logits) if logits else None, done))
