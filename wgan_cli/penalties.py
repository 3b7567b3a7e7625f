"""Critic regularisers: penalties, which return a scalar tensor the engine adds to the critic loss (times
lambda) and never call .backward() themselves, and constraints, which act on the weights after each critic step.

A penalty is called as `penalty(D, real, fake, gen, shard)`; `gen` is the engine's torch.Generator (alpha is drawn
from it so that runs are reproducible); under torchrun `shard` (a distributed.Group) says which rows of the global
batch `real` and `fake` are: alpha is drawn for the whole batch and those rows kept. Weight clipping (the original
WGAN) is a constraint, not a penalty: under `--penalty clip` the penalty term is zero and `clip_weights` runs after
every critic step.
"""

from __future__ import annotations

import torch
from torch import nn

from wgan_cli.errors import UsageError

EPS = 1e-12  # inside the sqrt: the second backward never sees d sqrt(0)
PER_SAMPLE = ("gp", "lp")   # penalties on per-sample gradients, which BatchNorm in the critic would break


def critic_score(out) -> torch.Tensor:
    """A critic returns (B,) scores, or (scores, class logits) when it has an auxiliary head."""
    return out[0] if isinstance(out, tuple) else out


def per_sample_grad_norm(grad: torch.Tensor) -> torch.Tensor:
    """L2 norm over every non-batch axis: (B, 2), (B, C, H, W) and (B, T, V) all give (B,)."""
    return torch.sqrt(grad.flatten(1).square().sum(1) + EPS)


def interpolate(real: torch.Tensor, fake: torch.Tensor, gen: torch.Generator | None, shard=None) -> torch.Tensor:
    """x_hat = real + alpha * (fake - real), alpha ~ U[0, 1] per sample, shaped (B, 1, ...)."""
    world = shard.world if shard is not None else 1
    shape = (real.shape[0] * world,) + (1,) * (real.dim() - 1)
    alpha = torch.rand(shape, device=real.device, generator=gen, dtype=real.dtype)
    return real + (shard.take(alpha) if shard is not None else alpha) * (fake - real)


def slopes(D: nn.Module, x_hat: torch.Tensor) -> torch.Tensor:
    """||grad_x D(x)|| at each x_hat, kept in the graph so the penalty can be differentiated."""
    x_hat = x_hat.detach().requires_grad_(True)
    score = critic_score(D(x_hat))
    (grad,) = torch.autograd.grad(score.sum(), x_hat, create_graph=True)
    return per_sample_grad_norm(grad.float())


def gradient_penalty(D, real, fake, gen=None, shard=None) -> torch.Tensor:
    """mean((||grad D(x_hat)|| - 1)^2), Eq. 3 of the paper (unweighted: the engine multiplies by lambda)."""
    return (slopes(D, interpolate(real.detach(), fake.detach(), gen, shard)) - 1).square().mean()


def one_sided_penalty(D, real, fake, gen=None, shard=None) -> torch.Tensor:
    """mean(max(0, ||grad D(x_hat)|| - 1)^2), Appendix C."""
    return torch.relu(slopes(D, interpolate(real.detach(), fake.detach(), gen, shard)) - 1).square().mean()


def no_penalty(D, real, fake, gen=None, shard=None) -> torch.Tensor:
    return torch.zeros((), device=real.device)


@torch.no_grad()
def clip_weights(D: nn.Module, clip_value: float) -> None:
    """Original WGAN: clip every critic parameter to [-c, c] (after each critic step)."""
    params = list(D.parameters())
    if params:
        torch._foreach_clamp_min_(params, -clip_value)
        torch._foreach_clamp_max_(params, clip_value)


PENALTIES = {
    "gp": gradient_penalty,
    "lp": one_sided_penalty,
    "clip": no_penalty,   # weight clipping constrains the weights instead (CONSTRAINTS)
    "none": no_penalty,
}
CONSTRAINTS = {"clip": clip_weights}


def has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def batchnorm_refusal(penalty: str) -> UsageError:
    return UsageError(
        f"BatchNorm in the critic cannot be used with --penalty {penalty}: it makes each sample's critic output "
        "depend on the rest of the batch, so the per-sample gradient penalty no longer constrains the critic's "
        "gradient at that sample (Section 4 of the paper)",
        "use --critic-norm layernorm (the paper's drop-in replacement) or none; BatchNorm in the critic is only "
        "for the baselines (--penalty clip or none)")
