"""The 2-D toy networks of gan_toy.py: ReLU MLPs, DIM 512, no normalisation."""

from __future__ import annotations

import torch
from torch import nn


def mlp(in_dim: int, dim: int, depth: int, out_dim: int) -> nn.Sequential:
    """`depth` hidden Linear+ReLU layers of width `dim`, then a Linear to `out_dim`."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(in_dim if i == 0 else dim, dim), nn.ReLU()]
    layers.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*layers)


class ToyGenerator(nn.Module):
    def __init__(self, dim: int = 512, depth: int = 3, z_dim: int = 2, out_dim: int = 2):
        super().__init__()
        self.z_dim, self.n_classes = z_dim, 0
        self.net = mlp(z_dim, dim, depth, out_dim)

    def forward(self, z: torch.Tensor, y=None) -> torch.Tensor:  # (B, z_dim) -> (B, 2)
        return self.net(z)


class ToyCritic(nn.Module):
    def __init__(self, dim: int = 512, depth: int = 3, in_dim: int = 2):
        super().__init__()
        self.net = mlp(in_dim, dim, depth, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 2) -> (B,)
        return self.net(x).squeeze(1)


class NoisyCopyGenerator(nn.Module):
    """Figure 1a's fixed generator: P_g = P_r convolved with N(0, sigma^2 I). No parameters: nothing trains.

    It draws its own real points from the data sampler (with the engine's generator, `gen`, set by the caller
    once the engine exists) and adds sigma * z, so it is a distribution like any generator.
    """

    def __init__(self, data, sigma: float = 1.0, z_dim: int = 2):
        super().__init__()
        self.data, self.sigma, self.z_dim, self.n_classes = data, sigma, z_dim, 0
        self.gen = None

    def forward(self, z: torch.Tensor, y=None) -> torch.Tensor:  # (B, 2) -> (B, 2)
        real, _ = self.data.sample(z.shape[0], self.gen)
        return real + self.sigma * z


def toy_mlp(*, dim: int = 512, depth: int = 3, z_dim: int = 2, data_dim: int = 2) -> tuple[nn.Module, nn.Module]:
    return ToyGenerator(dim, depth, z_dim, data_dim), ToyCritic(dim, depth, data_dim)
