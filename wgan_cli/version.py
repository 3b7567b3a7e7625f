"""The package's version: one place, read by the package, checkpoints, exports and `wgan --version`."""

__version__ = "0.1.0"
