"""Joining a torchrun job: `join(device, cfg)` gives this process its `distributed.Group` - alone when WORLD_SIZE is
1 (a plain run), else its rank in the process group (NCCL for CUDA tensors, Gloo for CPU ones), on the GPU of its
LOCAL_RANK - after checking that the global batch splits evenly over the ranks; at exit the ranks leave together.
"""

from __future__ import annotations

import atexit
import os
from datetime import timedelta

import torch
import torch.distributed as dist

from wgan_cli.distributed import Group
from wgan_cli.errors import DistributedError, UsageError

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
