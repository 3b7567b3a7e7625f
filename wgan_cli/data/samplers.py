"""Samplers that feed the engine real images: `sample(n, gen) -> (x, labels or None)` plus a resumable state.

Small sets (MNIST, Fashion-MNIST, CIFAR-10/100, SVHN) are held on the device as uint8 (DeviceImages); a batch is
drawn there with indices from the engine's generator, and dequantised and scaled there (no host round trip per
step); so are prepared sets of image files (a folder, CelebA, LSUN) that fit the memory budget. Larger prepared
sets are read from their memory map by DataLoader workers into pinned memory (StreamImages over PreparedRows), in
an order fixed by (seed, epoch) so that a resumed run reads the same images.

Signals: service managers (docker stop, systemd, Slurm, `timeout`) send SIGTERM to every process of the group.
The workers ignore SIGINT and SIGTERM (they start with both blocked, so none arrives before the worker sets
that up) and leave the stop to the main process, which saves at the next iteration boundary and then shuts its
workers down; they also exit on their own when the main process is gone. An error in a worker reaches the user
as one line, not the worker's traceback.
"""

from __future__ import annotations

import atexit
import signal
import weakref
from contextlib import contextmanager
from pathlib import Path

import multiprocessing.util   # noqa: F401 (its exit hook is registered before ours, so ours runs first)

import numpy as np
import torch
import torch.utils.data

from wgan_cli.data.pixels import scale_real
from wgan_cli.errors import DataError, WganError

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class DeviceImages:
    """uint8 images on the device; `sample` draws indices with the caller's generator (with replacement)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None, pixel_range: str = "tanh",
                 dequantize: bool = False):
        self.images, self.labels = images, labels   # (N, C, H, W) uint8, (N,) int64
        self.pixel_range, self.dequantize = pixel_range, dequantize
        self.device = images.device

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, n: int, gen: torch.Generator):
        idx = torch.randint(0, len(self.images), (n,), device=self.device, generator=gen)
        x = scale_real(self.images[idx], self.pixel_range, self.dequantize, gen)
        return x, (self.labels[idx] if self.labels is not None else None)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


# ---- streamed data -----------------------------------------------------------------------------------------


class PreparedRows(torch.utils.data.Dataset):
    """Rows `index` of a prepared set's memory map (data/prepared.py) as uint8 (C, H, W) and a label (-1 without
    labels). The map is opened in each worker process (only the path crosses to it)."""

    def __init__(self, path, index: list[int], labels: np.ndarray | None):
        self.path, self.index = Path(path), np.asarray(index, dtype=np.int64)
        self.labels = None if labels is None else np.asarray(labels)[self.index]
        self._images = None

    def __len__(self) -> int:
        return len(self.index)

    def __getstate__(self):
        return {**self.__dict__, "_images": None}

    def __getitem__(self, i: int):
        if self._images is None:
            self._images = np.load(self.path / "images.npy", mmap_mode="r", allow_pickle=False)
        x = torch.from_numpy(np.array(self._images[self.index[i]])).permute(2, 0, 1)   # (C, H, W)
        return x, (int(self.labels[i]) if self.labels is not None else -1)


class _OrderedBatches(torch.utils.data.Sampler):
    """Index batches of a permutation fixed by (seed, epoch), starting at `start` samples into the epoch; of each
    batch only the positions `rows` (one rank's share under torchrun)."""

    def __init__(self, n: int, batch: int, seed: int, epoch: int, start: int, rows: slice = slice(None)):
        self.n, self.batch, self.seed, self.epoch, self.start, self.rows = n, batch, seed, epoch, start, rows

    def __iter__(self):
        epoch, pos = self.epoch, self.start
        while True:
            seed = (self.seed * 100003 + epoch) % 2**64   # the same order as ever, for any seed up to 2^63 - 1
            perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(seed))
            while pos + self.batch <= self.n:
                yield perm[pos: pos + self.batch][self.rows].tolist()
                pos += self.batch
            epoch, pos = epoch + 1, 0   # drop the last partial batch, as the official loaders do


def _worker_init(worker_id: int) -> None:
    """In each DataLoader worker: SIGINT and SIGTERM are the main process's to handle (see the module note)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


@contextmanager
def _stop_signals_blocked():
    """Workers forked inside inherit a mask with SIGINT/SIGTERM blocked: a signal sent to the process group
    while they start waits (and is then ignored by them); the main process gets its own as soon as they exist."""
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    except (ValueError, OSError, AttributeError):   # not the main thread, or no pthread_sigmask
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def worker_error(e: Exception) -> WganError:
    """A DataLoader error (a worker's exception re-raised with the worker's whole traceback in its message, or a
    worker that died) as one line."""
    text = str(getattr(e, "message", None) or e).strip()
    if "Original Traceback" in text:   # the last line is "module.Class: message"
        last = text.splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last and "." in last.split(": ", 1)[0] else last
    else:
        text = text.splitlines()[0] if text else type(e).__name__
    hint = getattr(e, "hint", None) or ("check the prepared set (prepare it again with `wgan prepare`), or read "
                                        "it in the main process with --workers 0")
    return (type(e) if isinstance(e, WganError) else DataError)(f"reading the data set: {text}", hint)


_open_loaders: "weakref.WeakSet[StreamImages]" = weakref.WeakSet()
_worker_processes: list = []   # every worker started, so that none can outlive the main process


def _close_open_loaders() -> None:
    """At exit, shut every worker down while multiprocessing can still do it cleanly. Registered after torch's
    own exit hook (this module imports torch first), so it runs before it (atexit runs last-in, first-out).
    A worker whose loader was already dropped (its iterator left in a reference cycle) is killed: it ignores the
    SIGTERM of multiprocessing's own exit hook, which would then wait for it forever."""
    for stream in list(_open_loaders):
        stream.close()
    if any(p.is_alive() for p in _worker_processes):
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)   # torch's handler would report the kill as a failure
    for process in _worker_processes:
        if process.is_alive():
            process.kill()
            process.join(5)
    _worker_processes.clear()


atexit.register(_close_open_loaders)


class StreamImages:
    """A DataLoader over PreparedRows; the cursor (epoch, position) is part of the train state.

    Under torchrun `sample(n, gen, shard)` reads only the rank's rows of each global batch of n; the cursor stays
    global, so a checkpoint does not depend on the number of ranks."""

    reads_rows = True

    def __init__(self, dataset: PreparedRows, batch_size: int, device, pixel_range: str = "tanh",
                 dequantize: bool = False, seed: int = 0, workers: int = 4):
        self.dataset, self.batch_size, self.device = dataset, batch_size, torch.device(device)
        self.pixel_range, self.dequantize, self.seed, self.workers = pixel_range, dequantize, seed, workers
        if len(dataset) < batch_size:
            raise DataError(f"the dataset has {len(dataset)} images, fewer than one batch of {batch_size}",
                            "add images or lower --batch-size")
        self.epoch, self.pos = 0, 0
        self._iter, self._rows = None, slice(None)

    def __len__(self) -> int:
        return len(self.dataset)

    def _loader(self):
        sampler = _OrderedBatches(len(self.dataset), self.batch_size, self.seed, self.epoch, self.pos, self._rows)
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_sampler=sampler, num_workers=self.workers,
            pin_memory=self.device.type == "cuda", persistent_workers=False,
            prefetch_factor=4 if self.workers else None, worker_init_fn=_worker_init if self.workers else None)
        if not self.workers:
            return iter(loader)
        with _stop_signals_blocked():   # the workers start here
            it = iter(loader)
        _open_loaders.add(self)
        _worker_processes[:] = [p for p in _worker_processes if p.is_alive()] + list(getattr(it, "_workers", []))
        return it

    def close(self) -> None:
        """Shut the workers down now: they ignore SIGTERM, so multiprocessing's exit-time terminate() would not
        end them (torch's own at-exit path relies on it)."""
        it, self._iter = self._iter, None
        shutdown = getattr(it, "_shutdown_workers", None)
        if shutdown is not None:
            try:
                shutdown()
            except Exception:   # already shut down, or a worker already gone: nothing left to stop
                pass

    def sample(self, n: int, gen: torch.Generator, shard=None):
        if n != self.batch_size:
            raise ValueError(f"streamed data gives batches of {self.batch_size}, asked for {n}")
        rows = shard.rows(n) if shard is not None else slice(None)
        if self._iter is None or rows != self._rows:
            self._rows = rows
            self._iter = self._loader()
        try:
            x, y = next(self._iter)
        except (WganError, RuntimeError, OSError) as e:   # from a worker: one line, not its traceback
            self.close()
            raise worker_error(e) from None
        self.pos += n
        if self.pos + n > len(self.dataset):
            self.epoch, self.pos = self.epoch + 1, 0
        x = scale_real(x.to(self.device, non_blocking=True), self.pixel_range, self.dequantize, gen, shard)
        labels = y.to(self.device, non_blocking=True) if self.dataset.labels is not None else None
        return x, labels

    def state_dict(self) -> dict:
        return {"cursor": torch.tensor([self.epoch, self.pos], dtype=torch.int64)}

    def load_state_dict(self, state: dict) -> None:
        if "cursor" in state:
            self.epoch, self.pos = (int(v) for v in state["cursor"].tolist())
            self.close()

    def rewind(self) -> None:
        """Back to the first batch (used for the validation split: the same images at every evaluation)."""
        self.epoch, self.pos = 0, 0
        self.close()
