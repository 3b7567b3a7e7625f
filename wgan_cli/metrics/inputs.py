"""What every metric takes: the generated set's Inception features, the reference's statistics and the options.

A metric is one function `(gen: Features, ref: RefStats | None, opts: MetricOptions) -> dict` (scores.py,
manifold.py); registry.py names them all.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Features:
    pool3: torch.Tensor                 # (N, 2048) float32, CPU
    logits: torch.Tensor | None = None  # (N, 1008) float32, CPU; None when the weights have no logits layer


@dataclass
class RefStats:
    mu: torch.Tensor                    # (2048,) float64
    sigma: torch.Tensor                 # (2048, 2048) float64
    features: torch.Tensor | None       # (M, 2048) float32, the pool3 features KID draws its subsets from
    n: int                              # images the statistics were computed from
    source: str = ""


@dataclass
class MetricOptions:
    splits: int = 10
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    seed: int = 0
    device: str | None = None           # where pr/dc compute their distance tiles (None: the features' device)
