"""Differentiable augmentation of everything the critic sees (DiffAugment, Zhao et al. 2020) with a fixed or an
adaptive probability (ADA's controller, Karras et al. 2020, on a signal that means something for a WGAN critic),
and random horizontal flips of the real images.

The transforms are DiffAugment's:
  color        brightness + U(-0.5, 0.5) (in units of half the data range), saturation x U(0, 2) around the
               per-pixel channel mean (skipped for 1-channel images: it is the identity there), contrast
               x U(0.5, 1.5) around the image mean; the result is clamped to the data range;
  translation  an integer shift of up to 1/8 of the image side in each direction, the image's edge filled with 0;
  cutout       a square of half the image side set to 0, at a random centre (it may cross the edge).
0 lies in both data ranges ([0, 1] and [-1, 1]), so translation and cutout keep the range without a clamp.

Each transform is applied to each image with probability p (ADA's per-image, per-transform probability). The
random numbers are always drawn for the whole global batch, whatever p is, from the engine's torch.Generator:
the checkpoint's RNG state covers them, p never changes which numbers a later draw gets, and under torchrun each
rank keeps its rows of the same global draws (distributed.Group.take), so 2 ranks draw as 1 process.

Where the gradient penalty is taken (--augment-penalty): by default between the augmented real and augmented
generated images, as DiffAugment's WGAN-GP code does: the critic the penalty constrains is the one whose scores
the losses use, and that critic only ever sees augmented images; `plain` takes it between the images before
augmentation (docs/small-data.md compares the two).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from wgan_cli.errors import UsageError

POLICIES = ("color", "translation", "cutout")
TRANSLATION_RATIO = 0.125   # DiffAugment's rand_translation
CUTOUT_RATIO = 0.5          # DiffAugment's rand_cutout

# --augment-p ada: the signal r = (mean D(train real) - mean D(held-out real)) / (|mean D(train real) - mean
# D(fake)| + ADA_EPS) is the critic's overfitting gap relative to its Wasserstein estimate (both differences of
# scores, so the free constant of a WGAN critic cancels). At the end of each interval a training, a held-out and
# a generated batch are scored together by the critic of that moment (scores from the interval's critic steps
# would carry the drift of the constant over the interval). p moves by sign(r - target) * (real images the critic
# saw in the interval) / ADA_IMAGES: ADA's speed, 0 -> 1 in 500k images. The target: --ada-target.
ADA_TARGET = 0.2
ADA_INTERVAL = 4          # generator iterations between adjustments (ADA: every 4 minibatches)
ADA_IMAGES = 500_000
ADA_EPS = 1e-8
RANGES = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}


def parse_policy(text: str) -> tuple[str, ...]:
    """'translation,cutout' -> ('translation', 'cutout'), in the order given; unknown or repeated names refused."""
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    for name in names:
        if name not in POLICIES:
            raise UsageError(f"unknown augmentation {name!r} in --augment {text!r}",
                             f"use a comma list of {', '.join(POLICIES)}, e.g. --augment translation,cutout")
    if len(set(names)) != len(names):
        raise UsageError(f"--augment {text!r} names an augmentation twice", "name each one once")
    return names


def parse_p(text: str) -> float | str:
    """'ada' or a probability in [0, 1]."""
    if text.strip().lower() == "ada":
        return "ada"
    try:
        p = float(text)
    except ValueError:
        p = float("nan")
    if not 0.0 <= p <= 1.0:   # also refuses nan
        raise UsageError(f"--augment-p {text!r} is neither a probability in [0, 1] nor ada",
                         "e.g. --augment-p 0.5, or --augment-p ada")
    return p


# ---- the transforms: (x, their random numbers) -> x; pure and differentiable in x ---------------------------
def brightness(x: torch.Tensor, u: torch.Tensor, half_width: float = 1.0) -> torch.Tensor:
    return x + (u.view(-1, 1, 1, 1).to(x.dtype) - 0.5) * half_width


def saturation(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (u.view(-1, 1, 1, 1).to(x.dtype) * 2) + mean


def contrast(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (u.view(-1, 1, 1, 1).to(x.dtype) + 0.5) + mean


def color(x: torch.Tensor, u: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """u: (N, 3) uniforms for brightness, saturation, contrast."""
    x = brightness(x, u[:, 0], (hi - lo) / 2)
    if x.shape[1] > 1:
        x = saturation(x, u[:, 1])
    x = contrast(x, u[:, 2])
    return x.clamp(lo, hi)


def translation(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """shift: (N, 2) integers in [-s, s]; pixels shifted in from outside are 0 (DiffAugment's rand_translation)."""
    n, _, h, w = x.shape
    b = torch.arange(n, device=x.device).view(n, 1, 1)
    gx = torch.arange(h, device=x.device).view(1, h, 1)
    gy = torch.arange(w, device=x.device).view(1, 1, w)
    gx = torch.clamp(gx + shift[:, 0].view(n, 1, 1) + 1, 0, h + 1)
    gy = torch.clamp(gy + shift[:, 1].view(n, 1, 1) + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])
    return padded.permute(0, 2, 3, 1)[b, gx, gy].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """offset: (N, 2) integers, the square's centre; the square is set to 0 (DiffAugment's rand_cutout)."""
    n, _, h, w = x.shape
    ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    rows = torch.arange(h, device=x.device).view(1, h, 1) - offset[:, 0].view(n, 1, 1) + ch // 2
    cols = torch.arange(w, device=x.device).view(1, 1, w) - offset[:, 1].view(n, 1, 1) + cw // 2
    inside = (rows >= 0) & (rows < ch) & (cols >= 0) & (cols < cw)   # (N, H, W)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def mirror(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """flip: (N,) bools; those images mirrored left to right."""
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


# ---- the controller of --augment-p ada ----------------------------------------------------------------------
def ada_step(p: torch.Tensor, gap: torch.Tensor, estimate: torch.Tensor, images: int,
             target: float = ADA_TARGET) -> tuple[torch.Tensor, torch.Tensor]:
    """One adjustment: (new p, the signal r), from the gap mean D(train) - mean D(held-out) and the estimate
    mean D(train) - mean D(fake). Tensors on the device: no host synchronisation."""
    r = gap / (estimate.abs() + ADA_EPS)
    p = (p + torch.sign(r - target) * (images / ADA_IMAGES)).clamp(0.0, 1.0)
    return p, r


@dataclass(frozen=True)
class Policy:
    """What a run augments: the transforms, the probability (a number, or 'ada'), flips of the real images."""

    names: tuple[str, ...] = ()
    p: float | str = 1.0
    mirror: bool = False
    penalty_on_augmented: bool = True   # the gradient penalty between the augmented images (else the plain ones)
    target: float = ADA_TARGET          # the gap ada holds

    @property
    def ada(self) -> bool:
        return self.p == "ada"

    def __bool__(self) -> bool:
        return bool(self.names) or self.mirror


class Augmenter:
    """The state of a run's augmentation on the device: p, and ada's last signal."""

    STATE = ("p", "signal")

    def __init__(self, policy: Policy, pixel_range: str, device: torch.device, val=None):
        self.policy = policy
        self.lo, self.hi = RANGES[pixel_range]
        self.val = val   # held-out sampler, for ada
        # p and the last signal r: float32 on the device, saved as one tensor (the same on every rank)
        self.state = torch.zeros(len(self.STATE), device=device)
        self.state[0] = 0.0 if policy.ada else float(policy.p)

    @property
    def p(self) -> torch.Tensor:
        return self.state[0]

    def _uniform(self, shape, gen, dist) -> torch.Tensor:
        return dist.take(torch.rand(shape, generator=gen, device=gen.device))

    def _ints(self, lo: int, hi: int, shape, gen, dist) -> torch.Tensor:
        return dist.take(torch.randint(lo, hi, shape, generator=gen, device=gen.device))

    def view(self, x: torch.Tensor, n: int, gen: torch.Generator, dist) -> torch.Tensor:
        """The critic's view of a batch (this rank's rows of a global batch of n): each transform of the policy,
        each applied to each image with probability p. The draws do not depend on p."""
        h, w = x.shape[-2:]
        p = self.p.to(x.dtype)
        for name in self.policy.names:
            apply = self._uniform((n,), gen, dist) < p
            if name == "color":
                out = color(x, self._uniform((n, 3), gen, dist).to(x.dtype), self.lo, self.hi)
            elif name == "translation":
                sx, sy = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
                shift = torch.stack([self._ints(-sx, sx + 1, (n,), gen, dist),
                                     self._ints(-sy, sy + 1, (n,), gen, dist)], 1)
                out = translation(x, shift)
            else:   # cutout
                ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
                offset = torch.stack([self._ints(0, h + (1 - ch % 2), (n,), gen, dist),
                                      self._ints(0, w + (1 - cw % 2), (n,), gen, dist)], 1)
                out = cutout(x, offset)
            x = torch.where(apply.view(-1, 1, 1, 1), out, x)
        return x

    def view_real(self, x: torch.Tensor, n: int, gen: torch.Generator, dist) -> torch.Tensor:
        """Real images: flipped (--mirror: a non-leaking augmentation, the data set is taken as symmetric), then
        the critic's view."""
        if self.policy.mirror:
            x = mirror(x, self._uniform((n,), gen, dist) < 0.5)
        return self.view(x, n, gen, dist) if self.policy.names else x

    def view_fake(self, x: torch.Tensor, n: int, gen: torch.Generator, dist) -> torch.Tensor:
        return self.view(x, n, gen, dist) if self.policy.names else x

    # ---- ada ------------------------------------------------------------------------------------------------
    def adjust(self, d_train: torch.Tensor, d_held: torch.Tensor, d_fake: torch.Tensor, dist, images: int) -> None:
        """End of an interval: this rank's mean scores of a training, a held-out and a generated batch, seen as in
        training, by the critic of the moment. Every rank computes the same p from the means over the ranks."""
        means = dist.mean(torch.stack([d_train - d_held, d_train - d_fake]).float())
        self.state[0], self.state[1] = ada_step(self.state[0], means[0], means[1], images, self.policy.target)

    def load(self, state: torch.Tensor) -> None:
        """A saved state. Five entries (p, an interval's two score sums and their count, r) are the layout of
        checkpoints from before the signal was taken at one moment: their p and r."""
        self.state.copy_(state[[0, 4]] if len(state) == 5 else state)

    def stats(self) -> dict[str, float]:
        values = self.state.tolist()
        out = {"augment_p": values[0]}
        if self.policy.ada:
            out["augment_signal"] = values[1]
        return out
