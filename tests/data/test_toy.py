import math

import torch

from wgan_cli.data.toy import make_toy_data
from wgan_cli.metrics.points import mode_coverage, wasserstein1


def test_eight_gaussians_match_gan_toy():
    data = make_toy_data("8gaussians")
    x, y = data.sample(8000, torch.Generator().manual_seed(0))
    assert y is None and x.shape == (8000, 2)
    radius = 2 / 1.414
    assert torch.allclose(data.centers.norm(dim=1), torch.full((8,), radius), atol=1e-5)
    cov = mode_coverage(x, data.centers)
    assert cov["modes_covered"] == 8 and 0.11 < cov["min_mode_share"] and cov["max_mode_share"] < 0.14
    assert abs(cov["mean_dist"] - 0.02 / 1.414 * math.sqrt(math.pi / 2)) < 1e-3   # Rayleigh mean


def test_twentyfive_gaussians_read_in_order_and_wrap():
    data = make_toy_data("25gaussians", seed=0)
    first, _ = data.sample(10)
    second, _ = data.sample(10)
    assert torch.equal(first, data.points[:10]) and torch.equal(second, data.points[10:20])
    assert len(data.points) == 100_000 and len(data.centers) == 25
    assert data.points.abs().max() < 4.5 / 2.828


def test_swissroll_range():
    x, _ = make_toy_data("swissroll").sample(5000, torch.Generator().manual_seed(0))
    r = x.norm(dim=1) * 7.5   # radius = t in [1.5 pi, 4.5 pi], plus noise
    assert r.min() > 1.5 * math.pi - 1.5 and r.max() < 4.5 * math.pi + 1.5


def test_wasserstein1_oracles():
    a = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    assert wasserstein1(a, a) == 0
    assert abs(wasserstein1(a, a + torch.tensor([3.0, 4.0])) - 5.0) < 1e-6   # a shift moves every point by 5
