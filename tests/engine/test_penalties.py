import torch
from torch import nn

from wgan_cli.objectives import OBJECTIVES
from wgan_cli.penalties import (PENALTIES, clip_weights, gradient_penalty, interpolate,
                                one_sided_penalty, per_sample_grad_norm, slopes)


class Linear(nn.Module):
    """D(x) = <w, x> over all non-batch axes: its gradient norm is ||w|| everywhere."""

    def __init__(self, shape, norm):
        super().__init__()
        w = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        self.w = nn.Parameter(w / w.norm() * norm)

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1)


def test_gp_of_linear_critic_is_exact():
    D = Linear((2,), 5.0)
    real, fake = torch.randn(64, 2), torch.randn(64, 2)
    gp = gradient_penalty(D, real, fake, torch.Generator().manual_seed(1))
    assert abs(gp.item() - 16.0) < 1e-4   # (5 - 1)^2


def test_one_sided_penalty_ignores_small_slopes():
    real, fake = torch.randn(32, 2), torch.randn(32, 2)
    assert one_sided_penalty(Linear((2,), 0.5), real, fake).item() < 1e-8
    assert abs(one_sided_penalty(Linear((2,), 3.0), real, fake).item() - 4.0) < 1e-4
    assert abs(gradient_penalty(Linear((2,), 0.5), real, fake).item() - 0.25) < 1e-4


def test_per_sample_norm_over_all_non_batch_axes():
    # (B, 2), (B, C, H, W) and (B, T, V): each sample's norm over everything but the batch axis
    for shape in [(5, 2), (5, 3, 8, 8), (5, 32, 20)]:
        g = torch.randn(shape)
        expected = torch.stack([g[i].pow(2).sum().sqrt() for i in range(shape[0])])
        # two float32 sums of K squares in different orders: each within (K - 1) u of the exact sum (u = 2^-24),
        # a norm within half that, so the two norms within K u of each other (relative), on any machine
        K = g[0].numel()
        assert torch.allclose(per_sample_grad_norm(g), expected, rtol=K * 2.0 ** -24, atol=0)
    # the common bug (norm over dim 1 of a 4-D gradient) would give a per-pixel tensor, not (B,)
    assert per_sample_grad_norm(torch.randn(5, 3, 8, 8)).shape == (5,)


def test_gp_exact_for_image_and_text_shaped_linear_critics():
    for shape in [(3, 8, 8), (32, 20)]:
        D = Linear(shape, 5.0)
        real, fake = torch.randn(16, *shape), torch.randn(16, *shape)
        assert abs(gradient_penalty(D, real, fake).item() - 16.0) < 1e-3


def test_slopes_differentiable_and_finite_at_zero_gradient():
    D = Linear((2,), 0.0)
    D.w.data.zero_()
    s = slopes(D, torch.randn(8, 2))
    (s - 1).square().mean().backward()
    assert torch.isfinite(D.w.grad).all()


def test_alpha_is_per_sample():
    real, fake = torch.zeros(1000, 3, 4, 4), torch.ones(1000, 3, 4, 4)
    x = interpolate(real, fake, torch.Generator().manual_seed(0))
    per_sample = x.flatten(1)
    assert torch.allclose(per_sample.min(1).values, per_sample.max(1).values)   # one alpha per sample
    assert 0.4 < per_sample[:, 0].mean() < 0.6 and per_sample[:, 0].std() > 0.25  # U[0, 1]


def test_weight_clip_bounds_every_parameter_and_adds_no_penalty():
    D = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
    inside = D[0].weight.detach().clamp(-0.01, 0.01)
    clip_weights(D, 0.01)
    assert max(p.abs().max().item() for p in D.parameters()) <= 0.01 + 1e-9
    assert torch.equal(D[0].weight.detach(), inside)   # values within the bound are untouched
    assert PENALTIES["clip"](D, torch.randn(4, 2), torch.randn(4, 2)).item() == 0


def test_objectives():
    r, f = torch.tensor([2.0, 4.0]), torch.tensor([1.0, -1.0])
    w = OBJECTIVES["wgan"]()
    assert w.critic(r, f).item() == 0.0 - 3.0 and w.generator(f).item() == 0.0
    ls = OBJECTIVES["lsgan"]()
    assert abs(ls.critic(torch.ones(3), torch.zeros(3)).item()) < 1e-9
    gan = OBJECTIVES["gan"]()
    assert gan.critic(torch.full((3,), 20.0), torch.full((3,), -20.0)).item() < 1e-6
    assert set(PENALTIES) == {"gp", "lp", "clip", "none"}


def test_registries_match_cli_enums():
    from wgan_cli.config import Objective, Penalty

    assert {p.value for p in Penalty} == set(PENALTIES)
    assert {o.value for o in Objective} == set(OBJECTIVES)
