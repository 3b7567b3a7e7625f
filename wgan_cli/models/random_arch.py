"""Section 5.1 of the paper: random architectures around the DCGAN 32x32 nets of gan_cifar.py (Table 1).

`sample_architecture(seed)` draws one point of Table 1, deterministically in the seed (its own `random.Random`;
torch's global RNG is neither read nor changed), as plain JSON values:

    g_nonlinearity, d_nonlinearity   "relu" | "lrelu" (slope 0.2, as tflib) | "softplus" | "tanh"
                                      where "softplus" is softplus(2x + 2) / 2 - 1, a smooth ELU-like curve
    g_depth, d_depth                 4 | 8 | 12 | 20
    g_batchnorm                      True | False   (BatchNorm in G)
    d_normalise                      True | False   (LayerNorm in D under a gradient penalty, BatchNorm for GAN)
    g_dim, d_dim                     32 | 64 | 128  (the base filter count, DIM of gan_cifar.py)

`random_dcgan(**architecture)` builds the pair; `random_spec(seed, ...)` is the model spec `wgan train --arch
random --arch-seed K` stores in options.json and in every checkpoint: the eight draws above plus size, channels,
z_dim and `critic_norm`, the normalisation D really uses (`critic_norm_for`: LayerNorm under a per-sample
penalty, BatchNorm otherwise, "none" when d_normalise is false). `sample` and `score` rebuild the nets from that
spec alone, never by drawing again.

How depth is realised. Depth counts the weight layers (convolutions and linear layers) on the path from input
to output, the usual meaning of "an N-layer net" (Figure 1b's 12-layer MLPs count their Linear layers too).
The DCGAN 32x32 nets have exactly 4: G = Linear + 3 stride-2 deconvolutions, D = 3 stride-2 convolutions +
Linear, so depth 4 is gan_cifar.py's net itself and every sampled net contains it. The remaining depth - 4
layers are stride-1 3x3 'same' convolutions that keep the width of their stage, spread as evenly as possible
over the 3 resolutions; a remainder goes to the stages nearest the image. In G they sit before each
deconvolution (at 4x4, 8x8, 16x16, widths 4*g_dim, 2*g_dim, g_dim); in D after each strided convolution (at
16x16, 8x8, 4x4, widths d_dim, 2*d_dim, 4*d_dim). Depth 20 thus adds 16 = 5 + 5 + 6 convolutions. At these
widths every extra convolution costs the same (256 * 9 * DIM^2 multiply-adds per image) wherever it sits.

Every weight layer except the output one is followed by its normalisation (when on) and the nonlinearity:
  G: Linear(z -> 4*4*4*g_dim) [BN] act -> (4g, 4, 4) -> ... -> deconv5(g_dim -> C) -> tanh
  D: conv5 s2 (C -> d_dim) act (no norm on the input layer, as DCGAN) -> ... [N] act -> Linear(4*4*4*d_dim -> 1)
The output nonlinearity of G is always tanh (data in [-1, 1]); the sampled one is used everywhere else.
Initialisation is tflib's (models.image.conv / deconv / linear).
"""

from __future__ import annotations

import random

import torch
from torch import nn

from wgan_cli.errors import UsageError
from wgan_cli.models.image import LayerNorm2d, conv, deconv, linear, n_stages
from wgan_cli.penalties import PER_SAMPLE

# Table 1 of the paper, in its order. The sampler draws the keys in this order (a fixed contract: changing
# it changes which architecture a seed names).
NONLINEARITIES = ("relu", "lrelu", "softplus", "tanh")
DEPTHS = (4, 8, 12, 20)
FILTERS = (32, 64, 128)
TABLE1 = {
    "g_nonlinearity": NONLINEARITIES,
    "d_nonlinearity": NONLINEARITIES,
    "g_depth": DEPTHS,
    "d_depth": DEPTHS,
    "g_batchnorm": (True, False),
    "d_normalise": (True, False),
    "g_dim": FILTERS,
    "d_dim": FILTERS,
}
CRITIC_NORM_KINDS = ("layernorm", "batchnorm")
EXTRA_KERNEL = 3   # the stride-1 convolutions that add depth
WEIGHT_DECAY_D = 1e-3   # Appendix B: weight decay in a normalised critic


def sample_architecture(seed: int) -> dict:
    """One architecture of Table 1, the same for the same seed on every machine and Python version."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UsageError(f"--arch-seed must be an integer, not {seed!r}", "e.g. --arch-seed 7")
    rng = random.Random(seed)   # seeding with an int is stable across Python versions; torch is not touched
    return {key: rng.choice(choices) for key, choices in TABLE1.items()}


def critic_norm_for(d_normalise: bool, penalty: str) -> str:
    """The normalisation a normalised critic gets: LayerNorm under a per-sample penalty (gp, lp), where BatchNorm
    would make each sample's score depend on the batch; BatchNorm otherwise (the standard GAN, clipping)."""
    if not d_normalise:
        return "none"
    return "layernorm" if penalty in PER_SAMPLE else "batchnorm"


def random_spec(seed: int, *, size: int = 32, channels: int = 3, z_dim: int = 128, penalty: str = "gp") -> dict:
    """The model spec of architecture `seed` (plain JSON values): rebuilds (G, D) through models.build."""
    drawn = sample_architecture(seed)
    return {"arch": "random", **drawn, "size": size, "channels": channels, "z_dim": z_dim,
            "critic_norm": critic_norm_for(drawn["d_normalise"], penalty)}


class SmoothElu(nn.Module):
    """softplus(2x + 2) / 2 - 1: tends to x for large x and to -1 for very negative x, smooth everywhere.
    softplus(y) = log(1 + e^y) = logaddexp(y, 0), stable for any y and without F.softplus's switch to the
    identity above y = 20 (which drops log1p(e^-y), visible in float64)."""

    def forward(self, x):
        y = 2.0 * x + 2.0
        return torch.logaddexp(y, torch.zeros_like(y)) / 2.0 - 1.0


def nonlinearity(kind: str) -> nn.Module:
    if kind == "relu":
        return nn.ReLU()
    if kind == "lrelu":
        return nn.LeakyReLU(0.2)
    if kind == "softplus":
        return SmoothElu()
    if kind == "tanh":
        return nn.Tanh()
    raise UsageError(f"unknown nonlinearity {kind!r}", f"choose one of: {', '.join(NONLINEARITIES)}")


def spread(extra: int, stages: int, image_side_last: bool) -> list[int]:
    """`extra` layers over `stages` slots as evenly as possible; the remainder goes to the slots nearest the
    image (the last slots of G, the first of D)."""
    base, rest = divmod(extra, stages)
    counts = [base + (1 if i < rest else 0) for i in range(stages)]
    return counts[::-1] if image_side_last else counts


class RandomGenerator(nn.Module):
    """Linear -> (4g, 4, 4) -> per stage: extra 3x3 convs, then deconv5 s2 halving the width -> C, tanh."""

    pixel_range = "tanh"

    def __init__(self, *, size: int, channels: int, z_dim: int, nonlinearity_kind: str, depth: int,
                 batchnorm: bool, dim: int):
        super().__init__()
        self.z_dim, self.n_classes = z_dim, 0
        stages = n_stages(size)
        widths = [dim * 2 ** (stages - 1 - i) for i in range(stages)]   # 4g, 2g, g at 32x32
        extras = spread(depth - (stages + 1), stages, image_side_last=True)
        self.shape = (widths[0], 4, 4)
        self.fc = linear(z_dim, widths[0] * 16)
        self.fc_norm = nn.BatchNorm1d(widths[0] * 16) if batchnorm else nn.Identity()
        self.fc_act = nonlinearity(nonlinearity_kind)
        layers: list[nn.Module] = []

        def block(layer: nn.Module, cout: int):
            layers.append(layer)
            if batchnorm:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nonlinearity(nonlinearity_kind))

        for i, w in enumerate(widths):
            for _ in range(extras[i]):
                block(conv(w, w, EXTRA_KERNEL), w)
            if i < stages - 1:
                block(deconv(w, widths[i + 1]), widths[i + 1])
            else:
                layers.append(deconv(w, channels))   # the output layer: tanh only
        self.net = nn.Sequential(*layers)

    def forward(self, z, y=None):  # (B, z_dim) -> (B, C, S, S) in [-1, 1]; unconditional: y is ignored
        x = self.fc_act(self.fc_norm(self.fc(z))).view(-1, *self.shape)
        return torch.tanh(self.net(x))


class RandomCritic(nn.Module):
    """Per stage: conv5 s2 doubling the width, then extra 3x3 convs; Linear(4*4*4d -> 1). Returns (B,) scores."""

    def __init__(self, *, size: int, channels: int, nonlinearity_kind: str, depth: int, normalise: bool,
                 norm_kind: str, dim: int):
        super().__init__()
        stages = n_stages(size)
        extras = spread(depth - (stages + 1), stages, image_side_last=False)
        layers: list[nn.Module] = []
        cin = channels
        for i in range(stages):
            cout = dim * 2**i
            for j in range(1 + extras[i]):
                layers.append(conv(cin, cout, 5, stride=2) if j == 0 else conv(cout, cout, EXTRA_KERNEL))
                if normalise and (i, j) != (0, 0):   # DCGAN: no normalisation on the input layer
                    layers.append(LayerNorm2d(cout) if norm_kind == "layernorm" else nn.BatchNorm2d(cout))
                layers.append(nonlinearity(nonlinearity_kind))
                cin = cout
        self.net = nn.Sequential(*layers)
        self.fc = linear(4 * 4 * cin, 1)

    def forward(self, x):  # (B, C, S, S) -> (B,)
        return self.fc(self.net(x).flatten(1)).squeeze(1)


def random_dcgan(*, size: int = 32, channels: int = 3, z_dim: int = 128, g_nonlinearity: str,
                 d_nonlinearity: str, g_depth: int, d_depth: int, g_batchnorm: bool, d_normalise: bool,
                 g_dim: int, d_dim: int, critic_norm: str | None = None,
                 n_classes: int = 0) -> tuple[nn.Module, nn.Module]:
    """(G, D) of one Table 1 architecture (e.g. `random_dcgan(**sample_architecture(7))`).

    `critic_norm` is the normalisation D uses: "layernorm" or "batchnorm" when `d_normalise` is true (default
    layernorm: BatchNorm under a gradient penalty would make each sample's score depend on the batch), "none"
    when it is false."""
    if n_classes:
        raise UsageError("--conditional is not available for random architectures", "use --arch resnet")
    if critic_norm is None:
        critic_norm = "layernorm" if d_normalise else "none"
    if d_normalise and critic_norm not in CRITIC_NORM_KINDS:
        raise UsageError(f"unknown critic normalisation {critic_norm!r} for a normalised critic",
                         f"choose one of: {', '.join(CRITIC_NORM_KINDS)}")
    if not d_normalise and critic_norm != "none":
        raise UsageError(f"critic_norm {critic_norm!r} given for an architecture without normalisation in D",
                         "critic_norm is 'none' when d_normalise is false")
    least = n_stages(size) + 1   # the DCGAN skeleton: one linear layer and one resampling conv per stage
    for name, depth in (("g_depth", g_depth), ("d_depth", d_depth)):
        if depth < least:
            raise UsageError(f"{name} {depth} is below the {least} weight layers of the DCGAN skeleton at "
                             f"{size}x{size}", f"use one of {', '.join(map(str, DEPTHS))}")
    G = RandomGenerator(size=size, channels=channels, z_dim=z_dim, nonlinearity_kind=g_nonlinearity,
                        depth=g_depth, batchnorm=bool(g_batchnorm), dim=g_dim)
    D = RandomCritic(size=size, channels=channels, nonlinearity_kind=d_nonlinearity, depth=d_depth,
                     normalise=bool(d_normalise), norm_kind=critic_norm, dim=d_dim)
    return G, D
