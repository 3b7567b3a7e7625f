"""wgan: train, sample and score WGAN-GP models (Gulrajani et al. 2017)."""

__version__ = "0.1.0"
