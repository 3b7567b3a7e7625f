"""Character n-gram distributions and their Jensen-Shannon divergence in bits (language_helpers.py, Table 4).

Lines arrive as (N, T) index tensors of the padded sequences (padding is a character, as in the official
NgramLanguageModel, which counts the n-grams of the padded 32-character tuples). An n-gram of indices
(c_1 .. c_n) is the integer sum c_k * V^(n-k), so counting is one torch.unique; V^4 fits in int64 for any
vocabulary below 2^15.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

NS = (1, 2, 3, 4)


@dataclass(frozen=True)
class NgramDist:
    """An empirical distribution: sorted n-gram keys (K,) int64 and their probabilities (K,) float64."""

    keys: torch.Tensor
    probs: torch.Tensor


def ngram_keys(idx: torch.Tensor, n: int, base: int) -> torch.Tensor:
    """(N, T) indices -> (N * (T - n + 1),) integer keys of every n-gram."""
    idx = idx.long().cpu()
    T = idx.shape[1]
    keys = torch.zeros(idx.shape[0], T - n + 1, dtype=torch.int64)
    for k in range(n):
        keys = keys * base + idx[:, k: T - n + 1 + k]
    return keys.reshape(-1)


def ngram_distribution(idx: torch.Tensor, n: int, base: int) -> NgramDist:
    if n > idx.shape[1]:
        raise ValueError(f"n = {n} is longer than the sequences ({idx.shape[1]})")
    keys, counts = torch.unique(ngram_keys(idx, n, base), return_counts=True)   # sorted keys
    counts = counts.double()
    return NgramDist(keys, counts / counts.sum())


def js_divergence(p: NgramDist, q: NgramDist) -> float:
    """0.5 KL(p || m) + 0.5 KL(q || m), m = (p + q) / 2, in bits: 0 for equal, 1 for disjoint supports."""
    keys, inverse = torch.unique(torch.cat([p.keys, q.keys]), return_inverse=True)
    pv = torch.zeros(len(keys), dtype=torch.float64).index_add_(0, inverse[: len(p.keys)], p.probs)
    qv = torch.zeros(len(keys), dtype=torch.float64).index_add_(0, inverse[len(p.keys):], q.probs)
    m = 0.5 * (pv + qv)

    def kl(a: torch.Tensor) -> float:   # KL(a || m) with 0 log 0 = 0 (m > 0 wherever a > 0)
        nz = a > 0
        return float((a[nz] * (a[nz] / m[nz]).log()).sum())

    return max(0.0, 0.5 * (kl(pv) + kl(qv)) / math.log(2))


def distributions(idx: torch.Tensor, base: int, ns=NS) -> dict[int, NgramDist]:
    return {n: ngram_distribution(idx, n, base) for n in ns if n <= idx.shape[1]}


def js_report(samples: torch.Tensor, reference: dict[int, NgramDist], base: int, suffix: str = "") -> dict:
    """{"js1": ..., "js4": ...} of the sample lines' n-gram distributions against the reference's."""
    return {f"js{n}{suffix}": js_divergence(ngram_distribution(samples, n, base), ref)
            for n, ref in reference.items()}
