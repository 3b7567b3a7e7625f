"""The three 2-D distributions of gan_toy.py, sampled on the device. Points are in the normalised units of the
official code (8 gaussians divided by 1.414, 25 gaussians by 2.828, swiss roll by 7.5)."""

from __future__ import annotations

import math

import torch

from wgan_cli.errors import UsageError


class EightGaussians:
    """Centres (+-1, 0), (0, +-1), (+-1/sqrt2, +-1/sqrt2), times 2; std 0.02; all divided by 1.414."""

    name = "8gaussians"

    def __init__(self, device="cpu", seed: int = 0):
        s = 1.0 / math.sqrt(2)
        c = torch.tensor([(1, 0), (-1, 0), (0, 1), (0, -1), (s, s), (s, -s), (-s, s), (-s, -s)]) * 2.0
        self.centers = (c / 1.414).to(device)
        self.std = 0.02 / 1.414
        self.device = torch.device(device)

    def sample(self, n: int, gen: torch.Generator | None = None):
        idx = torch.randint(0, len(self.centers), (n,), device=self.device, generator=gen)
        noise = torch.randn(n, 2, device=self.device, generator=gen)
        return self.centers[idx] + self.std * noise, None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class TwentyFiveGaussians(EightGaussians):
    """Grid {-4,-2,0,2,4}^2, std 0.05; 100,000 points generated once, shuffled, divided by 2.828, read in order."""

    name = "25gaussians"

    def __init__(self, device="cpu", seed: int = 0, n_points: int = 100_000):
        self.device = torch.device(device)
        g = torch.Generator().manual_seed(seed)
        grid = torch.tensor([(x, y) for x in range(-2, 3) for y in range(-2, 3)], dtype=torch.float32) * 2.0
        pts = grid.repeat(n_points // 25, 1) + 0.05 * torch.randn(n_points // 25 * 25, 2, generator=g)
        pts = pts[torch.randperm(len(pts), generator=g)] / 2.828
        self.points = pts.to(device)
        self.centers = (grid / 2.828).to(device)
        self.std = 0.05 / 2.828
        self.cursor = torch.zeros((), dtype=torch.int64, device=device)  # on the device: no host sync per batch

    def sample(self, n: int, gen: torch.Generator | None = None):
        idx = (self.cursor + torch.arange(n, device=self.device)) % len(self.points)
        self.cursor = (self.cursor + n) % len(self.points)
        return self.points[idx], None

    def state_dict(self) -> dict:
        return {"cursor": self.cursor.clone()}

    def load_state_dict(self, state: dict) -> None:
        if "cursor" in state:
            self.cursor = state["cursor"].to(self.device).clone()


class SwissRoll(EightGaussians):
    """scikit-learn's make_swiss_roll(noise=0.25): t = 1.5 pi (1 + 2u); keep (t cos t, t sin t); divide by 7.5."""

    name = "swissroll"
    centers = None

    def __init__(self, device="cpu", seed: int = 0):
        self.device = torch.device(device)

    def sample(self, n: int, gen: torch.Generator | None = None):
        u = torch.rand(n, device=self.device, generator=gen)
        torch.rand(n, device=self.device, generator=gen)   # the dropped y axis, drawn to keep sklearn's draw order
        t = 1.5 * math.pi * (1 + 2 * u)
        x = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1)
        x = x + 0.25 * torch.randn(n, 2, device=self.device, generator=gen)
        return x / 7.5, None


TOY_DATASETS = {
    "8gaussians": EightGaussians,
    "25gaussians": TwentyFiveGaussians,
    "swissroll": SwissRoll,
}


def make_toy_data(name: str, device="cpu", seed: int = 0):
    if name not in TOY_DATASETS:
        raise UsageError(f"unknown toy dataset {name!r}", f"choose one of: {', '.join(TOY_DATASETS)}")
    return TOY_DATASETS[name](device=device, seed=seed)
