"""Adversarial losses on critic scores. Each returns a scalar tensor; the engine does the backward.

`critic(d_real, d_fake)` is minimised by the critic, `generator(d_fake)` by the generator.
Scores arrive as (B,) tensors and are taken to fp32 before the reduction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class WassersteinLoss:
    """The WGAN critic maximises E[D(real)] - E[D(fake)]; the generator maximises E[D(fake)]."""

    def critic(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        return d_fake.float().mean() - d_real.float().mean()

    def generator(self, d_fake: torch.Tensor) -> torch.Tensor:
        return -d_fake.float().mean()


class NonSaturatingLoss:
    """DCGAN baseline: D is a logistic classifier, G maximises log D(G(z))."""

    def critic(self, d_real, d_fake):
        return F.softplus(-d_real.float()).mean() + F.softplus(d_fake.float()).mean()

    def generator(self, d_fake):
        return F.softplus(-d_fake.float()).mean()


class LeastSquaresLoss:
    """LSGAN baseline: 0.5 * [(D(r) - 1)^2 + D(f)^2] for the critic, 0.5 * (D(f) - 1)^2 for G."""

    def critic(self, d_real, d_fake):
        return 0.5 * ((d_real.float() - 1).square().mean() + d_fake.float().square().mean())

    def generator(self, d_fake):
        return 0.5 * (d_fake.float() - 1).square().mean()


OBJECTIVES = {
    "wgan": WassersteinLoss,
    "gan": NonSaturatingLoss,
    "lsgan": LeastSquaresLoss,
}
