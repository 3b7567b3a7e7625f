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
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Callable, Iterable, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from wgan_cli.errors import DistributedError, UsageError, WganError

T = TypeVar("T")
TIMEOUT_ENV = "WGAN_DIST_TIMEOUT"   # seconds a rank waits for the others at one collective (default 1800)
SAME_HARDWARE = ("give every rank the same GPU model and the same torch and CUDA versions: random numbers drawn on "
                 "a GPU depend on them")


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def main_process() -> bool:
    """False in a torchrun worker of rank > 0: rank 0 reports for the job."""
    return int(os.environ.get("RANK", "0")) == 0


def check_batches(cfg, world: int) -> None:
    """Batches are global: each of the W ranks takes B / W samples, so B must be a multiple of W."""
    for flag, n in (("--batch-size", cfg.batch_size), ("--gen-batch-size", cfg.gen_batch_size)):
        if n is not None and n % world:
            raise UsageError(f"{flag} {n} cannot be split over {world} ranks: the batch is global and every rank "
                             "takes an equal share of it", f"use a multiple of {world}, e.g. {flag} "
                                                           f"{world * max(1, n // world)}")


def join(device: torch.device, cfg=None) -> "Group":
    """This process's place in the job: alone (`Group(device=device)`), or under torchrun (WORLD_SIZE > 1) its rank
    in the process group, initialised once per process (NCCL for CUDA tensors and Gloo for CPU ones; Gloo alone on
    the CPU), on the GPU of its LOCAL_RANK. `cfg`'s batch sizes are checked before anything waits for other ranks."""
    world = world_size()
    if world == 1:
        return Group(device=device)
    if cfg is not None:
        check_batches(cfg, world)
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise UsageError(f"rank {rank} has LOCAL_RANK {local_rank}, but this node has "
                             f"{torch.cuda.device_count()} GPUs", "start at most one process per GPU "
                                                                   "(torchrun --nproc-per-node)")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise UsageError(f"--device {device.type} runs in one process; under torchrun use cuda or cpu",
                         "run without torchrun, or with --device cuda")
    if not dist.is_initialized():
        backend = "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"
        timeout = timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, "1800")))
        try:
            dist.init_process_group(backend, timeout=timeout)
        except (RuntimeError, ValueError) as e:
            raise DistributedError(f"rank {rank} could not join the other {world - 1} ranks: {e}",
                                   "check torchrun's --rdzv-endpoint (or MASTER_ADDR and MASTER_PORT) and that "
                                   "every node can reach it") from None
        atexit.register(_leave)
    return Group(dist.get_rank(), dist.get_world_size(), local_rank, device)


def _leave() -> None:
    """At exit: wait (briefly) for the other ranks, then leave the group together. A rank that tore its connections
    down while another was still in the group made that one's Gloo thread abort (exit 134) on the closed socket."""
    if not dist.is_initialized():
        return
    try:
        dist.monitored_barrier(timeout=timedelta(seconds=30))
    except Exception:   # a rank already gone, or stuck elsewhere: leave anyway
        pass
    dist.destroy_process_group()


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

    # ---- a run -------------------------------------------------------------------------------------------------
    def check_shared(self, folder: Path) -> None:
        """Refuse a run directory that is not one folder for every rank (a node's own disk): rank 0 writes the
        checkpoints, and every rank reads them on resume."""
        if self.world == 1:
            return
        from wgan_cli import files

        token = self.broadcast_int(int.from_bytes(os.urandom(7), "little"))   # rank 0's
        probe = Path(folder) / f".rank0-{token:x}"
        self.agree(lambda: files.write_text(probe, ""), here=self.is_writer)

        def visible():
            if not probe.is_file():
                raise UsageError(f"rank {self.rank} does not see rank 0's files in {folder}: the run directory must "
                                 "be one folder for every rank", "give an --out on a file system every node mounts "
                                                                 "at the same path (NFS, Lustre, ...)")
        try:
            self.agree(visible, here=not self.is_writer)
        finally:
            if self.is_writer:
                probe.unlink(missing_ok=True)

    def attach(self, engine, identity: dict) -> None:
        """Make `engine` this rank's replica and set `engine.dist`: the refusals first (before any collective), then
        SyncBatchNorm on CUDA, rank 0's weights on every rank, and a check that every rank draws the same random
        numbers and runs the same options (`identity`) on data of the same size."""
        if self.world == 1:
            return
        from wgan_cli.engine import has_batchnorm

        batchnorm = has_batchnorm(engine.G) or has_batchnorm(engine.D)
        if batchnorm and engine.device.type != "cuda":
            raise UsageError("a model with BatchNorm cannot be split over ranks on the CPU: each rank would "
                             "normalise with its own share of the batch, another algorithm than one process's "
                             "(SyncBatchNorm, which normalises over the global batch, needs CUDA)",
                             "train it in one process (without torchrun) or on GPUs, or choose a model without "
                             "BatchNorm (e.g. --variant no-norm)")
        if not engine.train_generator:
            raise UsageError("a run with a fixed generator (--fixed-generator) runs in one process",
                             "run it without torchrun")
        if batchnorm:
            engine.G = nn.SyncBatchNorm.convert_sync_batchnorm(engine.G)   # same parameters, same state_dict keys
            engine.D = nn.SyncBatchNorm.convert_sync_batchnorm(engine.D)
        modules = [m for m in (engine.G, engine.D, engine.G_ema) if m is not None]
        self.broadcast_tensors(t for m in modules for t in m.state_dict().values())
        if not self.same(rng_digest(engine.device, engine.cfg.seed)):
            raise DistributedError("the ranks draw different random numbers from the same seed", SAME_HARDWARE)
        size = len(engine.data) if hasattr(engine.data, "__len__") else -1
        text = json.dumps({**identity, "data_size": size}, sort_keys=True, default=str)
        if not self.same(_ints(text.encode())):
            raise DistributedError("the ranks run different options, models or data (launch the same command with "
                                   "the same data on every node)", "compare the commands and data directories of "
                                                                   "the nodes")
        engine.dist = self

    def check_replicas(self, engine) -> None:
        """Before a save: every rank's state (weights, optimisers, random generator, data cursor) equal to the bit.
        A difference stops the run instead of saving one rank's version."""
        if self.world == 1:
            return
        from wgan_cli.checkpoint import digest

        if not self.same(_ints(digest(engine.state_tensors()).encode())):
            raise DistributedError(f"the ranks' replicas differ at iteration {engine.step}; nothing was saved",
                                   f"resume from the last checkpoint in the run directory; {SAME_HARDWARE}")

    def resume(self, load: Callable[[str], list], mode: str, path_of: Callable[[int], Path], engine) -> list:
        """Rank 0 picks the checkpoint to resume from (`load(mode)`, its notes returned); then every other rank
        loads the same file."""
        notes = self.agree(lambda: load(mode), here=self.is_writer) or []
        if self.world > 1:
            step = self.broadcast_int(engine.step)
            path = str(path_of(step)) if mode in ("auto", "never") else mode
            self.agree(lambda: load(path), here=not self.is_writer and step > 0)
        return notes


LOCAL = Group()
