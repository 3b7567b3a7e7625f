"""Critic regularisers. Each returns a scalar tensor and never calls .backward() itself.

A penalty is called as `penalty(D, real, fake, gen)`; `gen` is the engine's torch.Generator (alpha is drawn
from it so that runs are reproducible). Weight clipping is a constraint rather than a term: it contributes
zero to the loss and acts in `after_critic_step`.
"""

from __future__ import annotations

import torch
from torch import nn

EPS = 1e-12  # inside the sqrt: the second backward never sees d sqrt(0)


def critic_score(out) -> torch.Tensor:
    """A critic returns (B,) scores, or (scores, class logits) when it has an auxiliary head."""
    return out[0] if isinstance(out, tuple) else out


def per_sample_grad_norm(grad: torch.Tensor) -> torch.Tensor:
    """L2 norm over every non-batch axis: (B, 2), (B, C, H, W) and (B, T, V) all give (B,)."""
    return torch.sqrt(grad.flatten(1).square().sum(1) + EPS)


def interpolate(real: torch.Tensor, fake: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """x_hat = real + alpha * (fake - real), alpha ~ U[0, 1] per sample, shaped (B, 1, ...)."""
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    alpha = torch.rand(shape, device=real.device, generator=gen, dtype=real.dtype)
    return real + alpha * (fake - real)


def slopes(D: nn.Module, x_hat: torch.Tensor) -> torch.Tensor:
    """||grad_x D(x)|| at each x_hat, kept in the graph so the penalty can be differentiated."""
    x_hat = x_hat.detach().requires_grad_(True)
    score = critic_score(D(x_hat))
    (grad,) = torch.autograd.grad(score.sum(), x_hat, create_graph=True)
    return per_sample_grad_norm(grad.float())


class NoPenalty:
    needs_interpolates = False

    def __call__(self, D, real, fake, gen=None) -> torch.Tensor:
        return torch.zeros((), device=real.device)

    def after_critic_step(self, D: nn.Module) -> None:
        pass


class GradientPenalty(NoPenalty):
    """mean((||grad D(x_hat)|| - 1)^2), Eq. 3 of the paper (unweighted: the engine multiplies by lambda)."""

    needs_interpolates = True

    def penalty_from_slopes(self, s: torch.Tensor) -> torch.Tensor:
        return (s - 1).square().mean()

    def __call__(self, D, real, fake, gen=None) -> torch.Tensor:
        return self.penalty_from_slopes(slopes(D, interpolate(real.detach(), fake.detach(), gen)))


class OneSidedPenalty(GradientPenalty):
    """mean(max(0, ||grad D(x_hat)|| - 1)^2), Appendix C."""

    def penalty_from_slopes(self, s: torch.Tensor) -> torch.Tensor:
        return torch.relu(s - 1).square().mean()


class WeightClip(NoPenalty):
    """Original WGAN: clip every critic parameter to [-c, c] after each critic step."""

    def __init__(self, clip_value: float = 0.01):
        self.clip_value = clip_value

    @torch.no_grad()
    def after_critic_step(self, D: nn.Module) -> None:
        params = [p for p in D.parameters()]
        if params:
            torch._foreach_clamp_min_(params, -self.clip_value)
            torch._foreach_clamp_max_(params, self.clip_value)


PENALTIES = {
    "gp": lambda clip_value: GradientPenalty(),
    "lp": lambda clip_value: OneSidedPenalty(),
    "clip": lambda clip_value: WeightClip(clip_value),
    "none": lambda clip_value: NoPenalty(),
}
