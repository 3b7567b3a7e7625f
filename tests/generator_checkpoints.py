"""Tiny checkpoints of every generator family, for the API, sample and export tests."""

import torch

from wgan_cli import checkpoint, models

TEXT_EXTRA = {"vocab": ["", "a", "b", "c", " ", "`"], "seq_len": 8, "pad": "`"}
FAMILIES = {   # name -> (task, spec): the architecture families a checkpoint can hold, at tiny widths
    "toy": ("toy", {"arch": "toy-mlp", "dim": 8, "depth": 2, "z_dim": 2, "data_dim": 2}),
    "dcgan28": ("image", dict(arch="dcgan", dim=4, size=28, channels=1, z_dim=16)),
    "dcgan32": ("image", dict(arch="dcgan", dim=4, size=32, channels=3, z_dim=16)),
    "dcgan64": ("image", dict(arch="dcgan", dim=4, size=64, channels=3, z_dim=16)),
    "resnet": ("image", dict(arch="resnet", dim=8, size=32, channels=3, z_dim=16)),
    "resnet64": ("image", dict(arch="resnet64", dim=4, size=64, channels=3, z_dim=16)),
    "resnet-cond": ("image", dict(arch="resnet", dim=8, size=32, channels=3, z_dim=16, n_classes=10)),
    "text": ("text", dict(arch="text-resnet", vocab_size=6, seq_len=8, dim=8, z_dim=16, n_blocks=1)),
}


def make_checkpoint(path, family: str, seed: int = 0):
    """A generator checkpoint of `family` with weights from `seed`; BatchNorm running statistics are moved off
    their initial (0, 1) so eval mode is exercised."""
    task, spec = FAMILIES[family]
    torch.manual_seed(seed)
    G, _ = models.build(spec)
    for m in G.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    tensors = {"G." + k: v for k, v in G.state_dict().items()}
    return checkpoint.save(path, tensors, kind="generator", task=task, model=spec, step=3,
                           extra=TEXT_EXTRA if task == "text" else None)
