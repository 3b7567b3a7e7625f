"""Architectures, by name, and drawing from a generator.

A model spec is a JSON dict {"arch": NAME, **kwargs}; it is stored in every checkpoint, and `build(spec)`
rebuilds (G, D) from it alone. Each architecture has one record in ARCHS: its builder and the facts the
commands need before building (task, image sizes, defaults, conditional support, allowed critic norms).
Adding an architecture is one builder function returning (G, D) and one entry here; `check` holds every check.

Every generator takes `(z, y=None)` and has `z_dim` and `n_classes` (0 when unconditional); every critic maps a
batch to (B,) scores, or to (scores, class logits) when it has an auxiliary classifier head.
"""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn

from wgan_cli.errors import UsageError
from wgan_cli.models.image import VARIANTS, dcgan, mlp, resnet, resnet64, resnet101
from wgan_cli.models.init import INIT_WHEN_ABSENT, check_init, initialise
from wgan_cli.models.random_arch import random_dcgan
from wgan_cli.models.text import text_resnet
from wgan_cli.models.toy import toy_mlp
from wgan_cli.penalties import PER_SAMPLE, batchnorm_refusal

CRITIC_NORMS = ("none", "layernorm", "batchnorm")


@dataclass(frozen=True)
class Arch:
    build: Callable[..., tuple[nn.Module, nn.Module]]
    task: str = "image"                     # toy | image | text
    sizes: tuple[int, ...] = ()             # image sizes the nets are defined at
    size: int = 32                          # default image size...
    follows_dataset: bool = True            # ...unless the dataset's own size is one of `sizes`
    dim: int = 64                           # default base width (--dim)
    critic_norm: str = "none"               # default normalisation in the critic
    conditional: bool = False               # conditional BN in G + auxiliary classifier in D (AC-WGAN-GP)
    variants: tuple[str, ...] = ("default",)
    sigmoid_size: int | None = None         # the size at which G ends in a sigmoid (data in [0, 1])
    dequantize: bool = False                # the official script for this net dequantises the data


ARCHS = {
    "toy-mlp": Arch(toy_mlp, task="toy", dim=512),
    # gan_mnist.py's nets at 28 px, gan_cifar.py / gan_64x64.py DCGAN at 32+ (Figure 2's variants)
    "dcgan": Arch(dcgan, sizes=(28, 32, 64, 128), variants=VARIANTS, sigmoid_size=28),
    "resnet": Arch(resnet, sizes=(32, 64, 128), dim=128, conditional=True, dequantize=True),   # Appendix F
    "resnet64": Arch(resnet64, sizes=(64, 128), size=64, critic_norm="layernorm", conditional=True),
    # the paper trains these two at 64 px (Figure 2), whatever the dataset's own size
    "resnet101": Arch(resnet101, sizes=(32, 64, 128), size=64, follows_dataset=False, critic_norm="layernorm"),
    "mlp": Arch(mlp, sizes=(28, 32, 64, 128), size=64, follows_dataset=False),
    # Section 5.1: one Table 1 architecture around the DCGAN 32x32 nets, drawn by --arch-seed (random_arch.py)
    "random": Arch(random_dcgan, sizes=(32,), size=32, follows_dataset=False),
    "text-resnet": Arch(text_resnet, task="text", dim=512),
}
IMAGE_ARCHS = tuple(name for name, a in ARCHS.items() if a.task == "image")


def get(name: str, task: str | None = None) -> Arch:
    arch = ARCHS.get(name)
    if arch is None or (task is not None and arch.task != task):
        names = [n for n, a in ARCHS.items() if task is None or a.task == task]
        raise UsageError(f"unknown architecture {name!r}", f"choose one of: {', '.join(names)}")
    return arch


def image_size(name: str, requested: int | None, native: int) -> int:
    """--size if given (and allowed), else the dataset's own size when the nets follow it, else the default."""
    arch = get(name, "image")
    if requested is not None:
        if requested not in arch.sizes:
            raise UsageError(f"--arch {name} works at {', '.join(map(str, arch.sizes))} pixels, not {requested}",
                             f"use --size {arch.size}")
        return requested
    return native if arch.follows_dataset and native in arch.sizes else arch.size


def pixel_range(name: str, size: int) -> str:
    """The pixel range of the images the architecture's G makes at `size`: 'sigmoid' (data in [0, 1]) for the
    gan_mnist.py nets, 'tanh' (data in [-1, 1]) for everything else (each generator class says it again as its
    `pixel_range` attribute, which the tests hold to this)."""
    return "sigmoid" if get(name).sigmoid_size == size else "tanh"


def check(name: str, *, critic_norm: str = "none", conditional: bool = False, variant: str = "default",
          penalty: str = "none") -> Arch:
    """Every architecture check, before any data is read or any weight allocated."""
    arch = get(name, "image")
    if critic_norm not in CRITIC_NORMS:
        raise UsageError(f"unknown critic normalisation {critic_norm!r}", f"use one of: {', '.join(CRITIC_NORMS)}")
    if critic_norm == "batchnorm" and penalty in PER_SAMPLE:
        raise batchnorm_refusal(penalty)
    if conditional and not arch.conditional:
        able = [n for n, a in ARCHS.items() if a.conditional]
        raise UsageError(f"--conditional needs conditional BN in G, available for --arch {' or '.join(able)}, "
                         f"not {name}", f"use --arch {able[0]}")
    if variant not in arch.variants:
        raise UsageError(f"--variant {variant} is not available for --arch {name}",
                         "drop --variant" if arch.variants == ("default",) else
                         f"choose one of: {', '.join(arch.variants)}")
    return arch


def build(spec: dict) -> tuple[nn.Module, nn.Module]:
    spec = dict(spec)
    spec.pop("fixed_generator", None)   # a toy run's flag, not a builder argument
    init = spec.pop("init", INIT_WHEN_ABSENT)   # applied after the builder, for every architecture (init.py)
    check_init(init)
    G, D = get(spec.pop("arch")).build(**spec)
    return initialise(G, init), initialise(D, init)


def build_seeded(spec: dict, seed: int) -> tuple[nn.Module, nn.Module]:
    """(G, D) initialised from `seed` alone, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build(spec)


# ---- drawing from a generator ----------------------------------------------------------------------------


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Evaluation mode (BatchNorm running statistics) inside, the previous mode restored after."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def _device(module: nn.Module, fallback: torch.device) -> torch.device:
    first = next(itertools.chain(module.parameters(), module.buffers()), None)
    return first.device if first is not None else fallback


@torch.no_grad()
def generate(G: nn.Module, z: torch.Tensor, labels: torch.Tensor | None = None, *, chunk: int = 500,
             to: torch.device | str | None = None) -> torch.Tensor:
    """G(z, labels) in eval mode, `chunk` rows at a time (bounded memory for 50,000 samples); the outputs are
    gathered on `to` (default: G's device)."""
    device = _device(G, z.device)
    out = []
    with eval_mode(G):
        for i in range(0, len(z), chunk):
            y = labels[i: i + chunk].to(device) if labels is not None else None
            out.append(G(z[i: i + chunk].to(device), y).to(to or device))
    return torch.cat(out)


def draw_z(G: nn.Module, n: int, gen: torch.Generator) -> torch.Tensor:
    """The prior of every generator: n latents z ~ N(0, I) of G's z_dim, drawn from `gen` on gen's device. The one
    place that says how z is drawn; callers choose the generator and the order of their draws."""
    return torch.randn(n, G.z_dim, device=gen.device, generator=gen)


def draw_labels(G: nn.Module, n: int, gen: torch.Generator) -> torch.Tensor:
    """n classes of a conditional G, uniform, drawn from `gen` on gen's device."""
    return torch.randint(0, G.n_classes, (n,), device=gen.device, generator=gen)


def latents(G: nn.Module, n: int, gen: torch.Generator, labels: torch.Tensor | None = None):
    """What `draw` feeds G: z from `gen`, then, for a conditional G given no `labels`, classes from `gen`.
    Returns (z, labels or None)."""
    z = draw_z(G, n, gen)
    if labels is None and G.n_classes:
        labels = draw_labels(G, n, gen)
    return z, labels


def draw(G: nn.Module, n: int, gen: torch.Generator, labels: torch.Tensor | None = None, *, chunk: int = 500,
         to: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n samples of G from the latents of `latents(G, n, gen, labels)`. Returns (outputs, labels or None)."""
    z, labels = latents(G, n, gen, labels)
    return generate(G, z, labels, chunk=chunk, to=to), labels
