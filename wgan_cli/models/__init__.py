"""Architectures, by name. A model spec is a JSON dict {"arch": NAME, "init": "tflib" | "torch", **kwargs}; it is
stored in every checkpoint, and `build(spec)` rebuilds (G, D) from it alone. "init" (see init.py) is applied here,
after the builder, for every architecture; without it the builder's own initialisation stands ("tflib").

Adding an architecture: one builder function returning (G, D) and one entry in ARCHS.
Every generator has `z_dim` (and `n_classes` when conditional); every critic maps a batch to (B,) scores,
or to (scores, class logits) when it has an auxiliary classifier head.
"""

from __future__ import annotations

from torch import nn

from wgan_cli.errors import UsageError
from wgan_cli.models.image import dcgan, mlp, resnet, resnet64, resnet101
from wgan_cli.models.init import INIT_WHEN_ABSENT, check_init, initialise
from wgan_cli.models.text import text_resnet
from wgan_cli.models.toy import toy_mlp

ARCHS = {
    "toy-mlp": toy_mlp,
    "dcgan": dcgan,
    "resnet": resnet,
    "resnet64": resnet64,
    "resnet101": resnet101,
    "mlp": mlp,
    "text-resnet": text_resnet,
}


def build(spec: dict) -> tuple[nn.Module, nn.Module]:
    spec = dict(spec)
    arch = spec.pop("arch")
    init = spec.pop("init", INIT_WHEN_ABSENT)
    if arch not in ARCHS:
        raise UsageError(f"unknown architecture {arch!r}", f"choose one of: {', '.join(sorted(ARCHS))}")
    check_init(init)
    G, D = ARCHS[arch](**spec)
    return initialise(G, init), initialise(D, init)
