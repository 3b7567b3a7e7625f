"""Appendix F's generator (BatchNorm) on one GPU: tests/run/test_distributed.py runs `trace_resnet` here under torchrun
as 2 ranks sharing the GPU over Gloo (NCCL refuses two ranks on one device), and in its own process as one rank.

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/dist_gpu_worker.py OUT_DIR

With 2 ranks the engine's BatchNorm layers become SyncBatchNorm (distributed.Group.attach): normalised over the
global batch, the first gradients and the running statistics equal one process's. TF32 is off.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file

from dist_worker import iteration, random_images
from wgan_cli import models, torchrun
from wgan_cli.config import TrainConfig, resolve_train
from wgan_cli.data.samplers import DeviceImages
from wgan_cli.distributed import Group
from wgan_cli.engine import Engine


def trace_resnet(group: Group) -> dict[str, torch.Tensor]:
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    device = torch.device("cuda", 0)
    cfg = resolve_train(TrainConfig(batch_size=64, n_critic=2, lr=1e-3, seed=5, iters=10))
    G, D = models.build_seeded({"arch": "resnet", "dim": 16, "size": 32, "channels": 3, "z_dim": 32}, 5)
    images, _ = random_images(256, 32, 0)
    engine = Engine(G, D, DeviceImages(images.to(device), None, "tanh", dequantize=True), cfg, device)
    torchrun.attach(group, engine, {"setting": "resnet"})
    out: dict = {}
    iteration(engine, {}, out)
    out.update({"G." + k: v.clone() for k, v in engine.G.state_dict().items() if "running" in k})
    return {k: v.detach().cpu().contiguous() for k, v in out.items() if not k.startswith("stats")}


if __name__ == "__main__":
    dist.init_process_group("gloo")
    group = Group(dist.get_rank(), dist.get_world_size(), 0, torch.device("cuda", 0))
    save_file(trace_resnet(group), str(Path(sys.argv[1]) / f"rank{group.rank}.safetensors"))
    dist.destroy_process_group()
