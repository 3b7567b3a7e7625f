"""The generator families a checkpoint can hold: one table, at the default width (benchmarks/export_check.py
exports these) and at a tiny one (the tests' checkpoints, tests/checkpoints.py), and the generator of a family
with fixed random weights."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wgan_cli import models


@dataclass(frozen=True)
class Family:
    label: str     # the name docs/api.md's export table gives it
    task: str      # toy | image | text
    spec: dict     # the model spec at the default width
    tiny: dict     # what the tests' tiny version changes in it

    def spec_at(self, tiny: bool) -> dict:
        return {**self.spec, **self.tiny} if tiny else dict(self.spec)


FAMILIES = {
    "toy": Family("toy (toy-mlp 3x512)", "toy",
                  {"arch": "toy-mlp", "dim": 512, "depth": 3, "z_dim": 2, "data_dim": 2}, {"dim": 8, "depth": 2}),
    "dcgan28": Family("dcgan 28 (MNIST nets)", "image",
                      dict(arch="dcgan", dim=64, size=28, channels=1, z_dim=128), dict(dim=4, z_dim=16)),
    "dcgan32": Family("dcgan 32", "image",
                      dict(arch="dcgan", dim=64, size=32, channels=3, z_dim=128), dict(dim=4, z_dim=16)),
    "dcgan64": Family("dcgan 64", "image",
                      dict(arch="dcgan", dim=64, size=64, channels=3, z_dim=128), dict(dim=4, z_dim=16)),
    "resnet": Family("resnet 32 (Appendix F)", "image",
                     dict(arch="resnet", dim=128, size=32, channels=3, z_dim=128), dict(dim=8, z_dim=16)),
    "resnet64": Family("resnet64", "image",
                       dict(arch="resnet64", dim=64, size=64, channels=3, z_dim=128), dict(dim=4, z_dim=16)),
    "resnet-cond": Family("resnet 32 conditional (10 classes)", "image",
                          dict(arch="resnet", dim=128, size=32, channels=3, z_dim=128, n_classes=10),
                          dict(dim=8, z_dim=16)),
    "text": Family("text (text-resnet 512, 32 chars)", "text",
                   dict(arch="text-resnet", vocab_size=96, seq_len=32, dim=512, z_dim=128, n_blocks=5),
                   dict(vocab_size=6, seq_len=8, dim=8, z_dim=16, n_blocks=1)),
}


def generator(spec: dict, seed: int = 0) -> torch.nn.Module:
    """G of `spec` with the weights of `seed` (the global RNG seeded); BatchNorm running statistics are moved off
    their initial (0, 1) so eval mode is exercised."""
    torch.manual_seed(seed)
    G, _ = models.build(spec)
    for m in G.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return G
