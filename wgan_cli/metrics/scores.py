"""Inception Score, FID and KID as small pure steps: features -> statistics -> number (precision/recall and
density/coverage are manifold.py; registry.py names every metric).

Conventions follow torch-fidelity (metrics.md): IS over `splits` consecutive splits of the (already shuffled)
logits, mean and population std; FID from float64 means and covariances; KID as the unbiased MMD^2 with the
cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets drawn exactly as torch-fidelity
draws them (numpy RandomState(seed).choice without replacement, generated set first).

Each metric is one function `(gen: Features, ref: RefStats | None, opts: MetricOptions) -> dict` (`metric_is`,
`metric_fid`, `metric_kid`), registered in registry.METRICS.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import torch

from wgan_cli.metrics.inputs import Features, MetricOptions, RefStats


# ---- statistics ---------------------------------------------------------------------------------------------
def statistics(features: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D) -> mean (D,) and unbiased covariance (D, D), float64 as np.mean / np.cov; two passes over chunks,
    so 50,000 features never become one float64 copy."""
    n, d = features.shape
    mu = sum(features[i: i + chunk].double().sum(dim=0) for i in range(0, n, chunk)) / n
    gram = torch.zeros(d, d, dtype=torch.float64)
    for i in range(0, n, chunk):
        centred = features[i: i + chunk].double() - mu
        gram += centred.T @ centred
    return mu, gram / (n - 1)


@contextmanager
def single_threaded():
    """LAPACK's eigen/SVD solvers gain little from threads at 2048 x 2048, and become 20-30x slower when the
    cores are shared with other processes (measured: eigh 2.3 s on 1 thread, 68 s on 2 busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def psd_root(m: torch.Tensor) -> torch.Tensor:
    """Some R with R R^T = m: the Cholesky factor when m is positive definite, else the symmetric square root."""
    root, info = torch.linalg.cholesky_ex(m)
    if info == 0:
        return root
    vals, vecs = torch.linalg.eigh(m)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


# ---- the three numbers --------------------------------------------------------------------------------------
def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^1/2).

    With R_i R_i^T = S_i, the eigenvalues of S1 S2 are the squared singular values of R2^T R1, so
    tr (S1 S2)^1/2 is the nuclear norm of R2^T R1: no general (complex) eigenproblem as in torch-fidelity, no
    scipy sqrtm as in pytorch-fid, and no squaring of S, so a singular covariance (N < 2048) leaves no
    sqrt(rounding) residue: FID of a set with itself is 0 to ~1e-12.
    """
    mu1, mu2, sigma1, sigma2 = (t.double().cpu() for t in (mu1, mu2, sigma1, sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"statistics of different dimensions: {tuple(mu1.shape)} vs {tuple(mu2.shape)}")
    with single_threaded():
        tr_covmean = torch.linalg.svdvals(psd_root(sigma2).T @ psd_root(sigma1)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + sigma1.trace() + sigma2.trace() - 2 * tr_covmean)


def inception_score(logits: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) per consecutive split; (mean, std over splits). Shuffle before calling."""
    logits = logits.double()
    n = len(logits)
    log_p = logits.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        chunk = log_p[i * n // splits: (i + 1) * n // splits]
        # log p(y) by log-sum-exp: finite even for a class no sample predicts (where p log(p / q) is then 0)
        log_q = chunk.logsumexp(dim=0) - math.log(len(chunk))
        scores.append(float((chunk.exp() * (chunk - log_q)).sum(dim=1).mean().exp()))
    s = torch.tensor(scores, dtype=torch.float64)
    return float(s.mean()), float(s.std(unbiased=False))


def mmd2_poly(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD^2 between two equal-size sets with k(a, b) = (a.b / d + 1)^3."""
    m, d = x.shape
    # dot products in float32 (as torch-fidelity); the cube and the sums, where cancellation happens, in float64
    k_xx = ((x @ x.T).double() / d + 1) ** 3
    k_yy = ((y @ y.T).double() / d + 1) ** 3
    k_xy = ((x @ y.T).double() / d + 1) ** 3
    off_diag = (k_xx.sum() - k_xx.diagonal().sum()) + (k_yy.sum() - k_yy.diagonal().sum())
    return float(off_diag / (m * (m - 1)) - 2 * k_xy.sum() / (m * m))


def kernel_inception_distance(gen: torch.Tensor, ref: torch.Tensor, subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float, int]:
    """Mean and std of MMD^2 over random subsets; the subset size shrinks to the smaller set when needed."""
    size = min(subset_size, len(gen), len(ref))
    rng = np.random.RandomState(seed % 2**32)   # numpy's seeds are 32-bit; wgan's go to 2^63 - 1
    gen, ref = gen.float().cpu(), ref.float().cpu()
    mmds = []
    for _ in range(subsets):
        a = gen[torch.from_numpy(rng.choice(len(gen), size, replace=False))]
        b = ref[torch.from_numpy(rng.choice(len(ref), size, replace=False))]
        mmds.append(mmd2_poly(a, b))
    s = torch.tensor(mmds, dtype=torch.float64)
    return float(s.mean()), float(s.std(unbiased=False)), size


# ---- the metrics -----------------------------------------------------------------------------------------
def metric_is(gen: Features, ref: RefStats | None, opts: MetricOptions) -> dict:
    # shuffle first: class-sorted inputs (a folder per class) would otherwise bias every split
    order = torch.from_numpy(np.random.RandomState(opts.seed % 2**32).permutation(len(gen.logits)))
    mean, std = inception_score(gen.logits[order], opts.splits)
    return {"is": mean, "is_std": std}


def metric_fid(gen: Features, ref: RefStats | None, opts: MetricOptions) -> dict:
    mu, sigma = statistics(gen.pool3)
    return {"fid": frechet_distance(mu, sigma, ref.mu, ref.sigma)}


def metric_kid(gen: Features, ref: RefStats | None, opts: MetricOptions) -> dict:
    mean, std, size = kernel_inception_distance(gen.pool3, ref.features, opts.kid_subsets, opts.kid_subset_size,
                                                opts.seed)
    return {"kid": mean, "kid_std": std, "kid_subset_size": size}
