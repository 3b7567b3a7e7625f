"""wgan: train, sample and score WGAN-GP models (Gulrajani et al. 2017).

`wgan_cli.load(path)` returns a trained generator as a Python object (api.py; docs/api.md). It is imported on
first use, so `wgan --help` does not pay for torch.
"""

__version__ = "0.1.0"


def __getattr__(name):
    if name == "load":
        from wgan_cli.api import load

        return load
    raise AttributeError(f"module 'wgan_cli' has no attribute {name!r}")
