"""wgan: train, sample and score WGAN-GP models (Gulrajani et al. 2017).

`wgan_cli.load(path)` returns a trained generator as a Python object (api.py; docs/api.md). It is imported on
first use, so `wgan --help` does not pay for torch.
"""

from wgan_cli.version import __version__  # noqa: F401 (the package's version)


def __getattr__(name):
    if name == "load":
        from wgan_cli.api import load

        return load
    raise AttributeError(f"module 'wgan_cli' has no attribute {name!r}")
