"""Joining a torchrun job: `join(device, cfg)` gives this process its `distributed.Group` - alone when WORLD_SIZE is
1 (a plain run), else its rank in the process group (NCCL for CUDA tensors, Gloo for CPU ones), on the GPU of its
LOCAL_RANK - after checking that the global batch splits evenly over the ranks; `attach(group, engine, identity)`
makes an engine this rank's replica; at exit the ranks leave together.
"""

from __future__ import annotations

import atexit
import json
import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from wgan_cli.distributed import SAME_HARDWARE, Group, rng_digest
from wgan_cli.errors import DistributedError, UsageError
from wgan_cli.penalties import has_batchnorm

TIMEOUT_ENV = "WGAN_DIST_TIMEOUT"   # seconds a rank waits for the others at one collective (default 1800)


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


def attach(group: Group, engine, identity: dict) -> None:
    """Make `engine` this rank's replica and set `engine.dist`: the refusals first (before any collective), then
    SyncBatchNorm on CUDA, rank 0's weights on every rank, and a check that every rank draws the same random
    numbers and runs the same options (`identity`) on data of the same size."""
    if group.world == 1:
        return
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
    group.broadcast_tensors(t for m in modules for t in m.state_dict().values())
    if not group.same(rng_digest(engine.device, engine.cfg.seed)):
        raise DistributedError("the ranks draw different random numbers from the same seed", SAME_HARDWARE)
    size = len(engine.data) if hasattr(engine.data, "__len__") else -1
    text = json.dumps({**identity, "data_size": size}, sort_keys=True, default=str)
    if not group.same_bytes(text.encode()):
        raise DistributedError("the ranks run different options, models or data (launch the same command with "
                               "the same data on every node)", "compare the commands and data directories of "
                                                               "the nodes")
    engine.dist = group


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
