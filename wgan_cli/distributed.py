"""Many processes, one algorithm: `wgan train`, `toy`, `textgen` and `score` under torchrun.

    torchrun --standalone --nproc-per-node 8 -m wgan_cli train --preset cifar10-resnet --out runs/cifar

Each rank (one process per device) holds a full replica of G and D; `Group` is everything the ranks do together.

- Batches stay global. Every rank draws the random numbers of the whole batch (data indices, z, labels, the
  penalty's interpolation weights, dequantisation noise) from the same seeded generator and keeps its rows
  [rank * b, (rank + 1) * b), b = B / W: W ranks compute the one-process algorithm (`take`, `sample`).
- After each backward the gradients are averaged over the ranks, one flat all-reduce per network divided by W
  (`average_grads`). No DistributedDataParallel: it does not support the penalty's autograd.grad.
- Control is replicated: statistics are averaged before they are read, a stop request is a vote, an error met on
  some ranks stops every rank with the same exit code (`agree`), the replicas are compared before each save.
- Only rank 0 writes: run directory, logs, figures, checkpoints. Every rank loads the checkpoint rank 0 picked.

`Group()` is one process: the slice is the whole batch and every collective the identity, so a run without
torchrun is the same run as before, bit for bit.

This module is the collectives alone and imports nothing else of wgan but its errors: joining a job and making an
engine this rank's replica are torchrun.py (`join`, `attach`); the run directory's part (one folder for every rank,
the replicas compared before a save, every rank resuming from rank 0's checkpoint) is rundir.py.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Iterable, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from wgan_cli.errors import DistributedError, WganError

T = TypeVar("T")
SAME_HARDWARE = ("give every rank the same GPU model and the same torch and CUDA versions: random numbers drawn on "
                 "a GPU depend on them")


def _ints(data: bytes) -> list[int]:
    """A digest as int64 values, comparable with a MIN / MAX all-reduce."""
    return np.frombuffer(hashlib.sha256(data).digest(), dtype=np.int64).tolist()


def rng_digest(device: torch.device, seed: int) -> list[int]:
    """What this device's generator draws for `seed` (normal, uniform, integers, a permutation), as a digest."""
    g = torch.Generator(device=device).manual_seed(seed)
    draws = [torch.randn(1024, device=device, generator=g), torch.rand(1024, device=device, generator=g),
             torch.randint(0, 1 << 20, (1024,), device=device, generator=g).double(),
             torch.randperm(1024, device=device, generator=g).double()]
    return _ints(b"".join(t.double().cpu().numpy().tobytes() for t in draws))


def _flat(tensors: list[torch.Tensor]) -> dict[torch.dtype, list[torch.Tensor]]:
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for t in tensors:
        by_dtype.setdefault(t.dtype, []).append(t)
    return by_dtype


class Group:
    """The ranks of one job, seen from one of them; `Group()` is a process on its own."""

    def __init__(self, rank: int = 0, world: int = 1, local_rank: int = 0, device: torch.device | str = "cpu"):
        self.rank, self.world, self.local_rank = rank, world, local_rank
        self.device = torch.device(device)

    @property
    def is_writer(self) -> bool:
        return self.rank == 0

    # ---- this rank's share of a global batch ------------------------------------------------------------------
    def rows(self, n: int) -> slice:
        b = n // self.world
        return slice(self.rank * b, (self.rank + 1) * b)

    def take(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a tensor drawn for the global batch (all of it in one process)."""
        if self.world == 1:
            return x
        assert len(x) % self.world == 0, (len(x), self.world)
        return x[self.rows(len(x))]

    def sample(self, data, n: int, gen: torch.Generator):
        """This rank's rows of a global real batch of n. A sampler with `reads_rows` (streamed files) reads only
        those, given `shard=self`; any other draws the whole batch and the rows are kept."""
        if self.world == 1:
            return data.sample(n, gen)
        if getattr(data, "reads_rows", False):
            return data.sample(n, gen, shard=self)
        x, y = data.sample(n, gen)
        return self.take(x), (None if y is None else self.take(y))

    def block(self, n_items: int) -> range:
        """A contiguous share of n_items (evaluation batches); the shares in rank order cover them in order."""
        per = -(-n_items // self.world)
        start = min(self.rank * per, n_items)
        return range(start, min(start + per, n_items))

    # ---- collectives (each the identity in one process) -------------------------------------------------------
    def average_grads(self, module: nn.Module) -> None:
        """The gradients of `module` averaged over the ranks: one flat all-reduce per dtype, divided by W. A
        gradient this rank does not have is sent as zeros (the layouts match) and stays None here, as in one
        process; the graphs are the same on every rank, so that never happens in practice."""
        if self.world == 1:
            return
        params = [p for p in module.parameters() if p.requires_grad]
        for group in _flat(params).values():
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in group]
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)
            flat /= self.world
            for p, g in zip(group, flat.split([p.numel() for p in group])):
                if p.grad is not None:
                    p.grad.copy_(g.view(p.shape))

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """The mean over ranks of a tensor (statistics before they are read: every rank logs the same values)."""
        if self.world == 1:
            return t
        t = t.clone()
        dist.all_reduce(t)
        return t / self.world

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.world == 1:
            return t
        t = t.clone()
        dist.all_reduce(t)
        return t

    def _reduce(self, values: list[int], op) -> list[int]:
        t = torch.tensor(values, dtype=torch.int64)
        dist.all_reduce(t, op=op)
        return t.tolist()

    def same(self, values: list[int]) -> bool:
        """Whether every rank holds the same integers."""
        if self.world == 1:
            return True
        return self._reduce(values, dist.ReduceOp.MIN) == self._reduce(values, dist.ReduceOp.MAX)

    def same_bytes(self, data: bytes) -> bool:
        """Whether every rank holds the same bytes (compared by their SHA-256)."""
        return self.same(_ints(data))

    def all_true(self, flag: bool) -> bool:
        if self.world == 1:
            return flag
        return bool(self._reduce([int(flag)], dist.ReduceOp.MIN)[0])

    def broadcast_int(self, value: int) -> int:
        """Rank 0's value, on every rank."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.int64)
        dist.broadcast(t, 0)
        return int(t)

    def broadcast_tensors(self, tensors: Iterable[torch.Tensor]) -> None:
        """Rank 0's values, in place, on every rank (one broadcast per dtype)."""
        if self.world == 1:
            return
        with torch.no_grad():
            for group in _flat(list(tensors)).values():
                flat = torch.cat([t.reshape(-1) for t in group])
                dist.broadcast(flat, 0)
                for t, v in zip(group, flat.split([t.numel() for t in group])):
                    t.copy_(v.view(t.shape))

    def gather_rows(self, t: torch.Tensor | None, rows: int) -> torch.Tensor | None:
        """Every rank's (rows_r, D) CPU tensor concatenated in rank order, on every rank; a rank with no rows may
        give None (and None comes back when no rank has columns)."""
        if self.world == 1:
            return t
        mine = torch.tensor([rows, 0 if t is None else t.shape[1]], dtype=torch.int64)
        sizes = [torch.zeros(2, dtype=torch.int64) for _ in range(self.world)]
        dist.all_gather(sizes, mine)
        max_rows, cols = (max(int(s[i]) for s in sizes) for i in (0, 1))
        if cols == 0:
            return None
        buf = torch.zeros(max_rows, cols, dtype=t.dtype if t is not None else torch.float32)
        if t is not None and rows:
            buf[:rows] = t
        parts = [torch.empty_like(buf) for _ in range(self.world)]
        dist.all_gather(parts, buf)
        return torch.cat([part[: int(s[0])] for part, s in zip(parts, sizes)])

    def vote(self, should_stop: Callable[[], int]) -> Callable[[], int]:
        """A stop request on any rank (the signal number; the largest wins) stops every rank at the same step."""
        if self.world == 1:
            return should_stop

        def voted() -> int:
            return self._reduce([should_stop()], dist.ReduceOp.MAX)[0]

        return voted

    def agree(self, fn: Callable[[], T], here: bool = True) -> T | None:
        """Run `fn` on the ranks where `here` is true (None elsewhere); a WganError raised on any rank stops every
        rank: that rank raises its own, the others a DistributedError with its exit code. Also a barrier."""
        error, result = None, None
        if here:
            try:
                result = fn()
            except WganError as e:
                error = e
        if self.world > 1:
            code = self._reduce([error.exit_code if error is not None else 0], dist.ReduceOp.MAX)[0]
            if code and error is None:
                raise DistributedError("stopped because another rank met an error (its message is above)",
                                       exit_code=code)
        if error is not None:
            raise error
        return result

    def barrier(self) -> None:
        self.agree(lambda: None)

    def per_node(self, fn: Callable[[], T]) -> T:
        """`fn` on each node's first rank, then on the others: what it downloads or caches is fetched once per node."""
        first = self.agree(fn, here=self.local_rank == 0)
        if self.world == 1:
            return first
        rest = self.agree(fn, here=self.local_rank != 0)
        return first if self.local_rank == 0 else rest


LOCAL = Group()
