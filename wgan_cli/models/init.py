"""Weight initialisation, the model spec's "init" key, applied once after a builder made (G, D).

tflib: the layers as the builders make them, which for the image nets is tflib's scheme (what the official
  TensorFlow code does; see image.py): uniform weights with std sqrt(4 / (fan_in + fan_out)) for convolutions,
  Glorot for linear layers, zero biases.
torch: PyTorch's default for every linear and convolution layer (`reset_parameters()`: Kaiming-uniform weights
  with a = sqrt(5), i.e. bound 1 / sqrt(fan_in), and biases uniform in +-1 / sqrt(fan_in)). Normalisation layers
  start at gamma 1, beta 0 under both, and keep it (conditional BN's class embeddings included).
"""

from __future__ import annotations

from torch import nn

from wgan_cli.errors import UsageError

INITS = ("tflib", "torch")
INIT_WHEN_ABSENT = "tflib"   # a spec without the key: every checkpoint written before the key existed

RESET = (nn.Linear, nn.modules.conv._ConvNd)   # the layers whose initialisation tflib defines


def check_init(init: str) -> None:
    if init not in INITS:
        raise UsageError(f"unknown initialisation {init!r}", f"choose one of: {', '.join(INITS)}")


def initialise(module: nn.Module, init: str) -> nn.Module:
    """Re-initialise `module` in place as `init` says; draws from the global RNG (seed it for a fixed result)."""
    check_init(init)
    if init == "torch":
        for m in module.modules():
            if isinstance(m, RESET):
                m.reset_parameters()
    return module
