"""Precision/recall (Kynkaanniemi et al. 2019) and density/coverage (Naeem et al. 2020) on pool3 features.

Definitions exactly as the reference implementation `prdc` (compute_prdc). With real features R (N, D), generated
features F (M, D) and r_k(x) the distance from x to its k-th nearest neighbour in its own set (x itself not counted):

  precision = mean_j [ exists i: d(R_i, F_j) < r_k(R_i) ]     generated samples inside the real manifold
  recall    = mean_i [ exists j: d(R_i, F_j) < r_k(F_j) ]     real samples inside the generated manifold
  density   = (1/k) mean_j #{ i: d(R_i, F_j) < r_k(R_i) }     how many real balls hold each generated sample
  coverage  = mean_i [ min_j d(R_i, F_j) < r_k(R_i) ]         real balls that hold at least one generated sample

k = 3 for precision/recall (Kynkaanniemi et al.), k = 5 for density/coverage (Naeem et al.); both papers use equal
numbers of real and generated samples. Comparisons are strict (<), as in prdc.

Distances are computed as scikit-learn computes them for prdc from float32 features: squared distances
|x|^2 - 2 x.y + |y|^2 in float64, rounded to float32, clipped at 0, square root in float32. Products in float32
instead would move the k-NN radii by up to ~1e-6 relative (measured on 2048-D features), enough to move a sample
lying on a ball's edge in or out; float64 costs ~2.3x the time on a CPU and keeps the numbers equal to prdc's.

Memory: distances are made tile by tile (`chunk` x `chunk`) on the features' device and reduced at once (a running
k+1 smallest per row for the radii; per-sample counts, flags and minima for the scores), so no N x M matrix ever
exists. For 2048-D float32 features and chunk = 2048, what is held at once beyond the inputs (which belong to the
caller: 400 MB per 50,000-feature set) is: float64 copies of a row block and a column block (2 x 32 MiB), the
temporary of a block's squared norms (32 MiB), one float64 tile of squared distances (32 MiB) and its float32
distances (16 MiB), boolean tiles (4 MiB), the running k+1 nearest of a row block (2048 x (k + 1)) and per-sample
vectors (radii, counts, flags, minima: under 2 MiB for 50,000). About 150 MiB, growing with N only through those
per-sample vectors; measured on the CPU: peak resident memory grew by 112, 173 and 151 MiB for N = M = 3,000, 6,000
and 12,000. One full 50k x 50k float32 matrix would be 9.3 GiB (prdc builds three of them, one after another).
Time: three passes of N x M x D multiply-adds in float64 (radii of R, radii of F, the cross pass); measured on one
CPU thread: 7 s for 6,000 x 6,000 x 2048, 37 s for 12,000.
"""

from __future__ import annotations

import torch

from wgan_cli.errors import DataError
from wgan_cli.metrics.inputs import Features, MetricOptions, RefStats

PR_K = 3      # Kynkaanniemi et al. 2019
DC_K = 5      # Naeem et al. 2020
CHUNK = 2048  # rows (and columns) of one distance tile; see the memory note above


# ---- distances, one tile at a time ---------------------------------------------------------------------------
def _block(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, D) -> its float64 copy (n, D) and squared norms (n,)."""
    x = x.to(torch.float64)
    return x, (x * x).sum(dim=1)


def _tile(a: torch.Tensor, a2: torch.Tensor, b: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
    """Distances between float64 blocks a (n, D) and b (m, D) -> (n, m) float32, in scikit-learn's order of
    operations: -2 a.b + |a|^2 + |b|^2 in float64, rounded to float32, max(0, .), sqrt in float32."""
    d2 = (a @ b.T).mul_(-2)                                             # exact: a power-of-two scale
    d2 += a2[:, None]
    d2 += b2[None, :]
    return d2.to(torch.float32).clamp_min_(0).sqrt_()


def _check_pair(real: torch.Tensor, fake: torch.Tensor) -> None:
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"need two (N, D) feature sets of one D, got {tuple(real.shape)} and {tuple(fake.shape)}")
    if real.device != fake.device:
        raise ValueError(f"feature sets on different devices: {real.device} and {fake.device}")


def knn_radii(x: torch.Tensor, k: int, chunk: int = CHUNK) -> torch.Tensor:
    """(N, D) -> (N,) float32: each point's distance to its k-th nearest neighbour in x, itself not counted.

    As prdc: the (k+1)-th smallest distance of the row, the point's own (zero) distance being the first.
    """
    n = len(x)
    if k < 1 or n < k + 1:
        raise ValueError(f"k-NN radii with k={k} need at least {k + 1} points, got {n}")
    kk = k + 1
    radii = torch.empty(n, dtype=torch.float32, device=x.device)
    for i in range(0, n, chunk):
        a, a2 = _block(x[i: i + chunk])
        best = None                                                     # (rows, <= k+1) smallest so far, ascending
        for j in range(0, n, chunk):
            b, b2 = (a, a2) if j == i else _block(x[j: j + chunk])
            d = _tile(a, a2, b, b2)                                     # (rows, cols)
            if j == i:
                d.fill_diagonal_(0)                                     # a point's distance to itself is exactly 0
            cand = d.topk(min(kk, d.shape[1]), dim=1, largest=False).values
            if best is not None:
                cand = torch.cat([best, cand], dim=1)
                cand = cand.topk(min(kk, cand.shape[1]), dim=1, largest=False).values
            best = cand
        radii[i: i + len(best)] = best[:, kk - 1]
    return radii


def _cross(real: torch.Tensor, fake: torch.Tensor, real_radii: torch.Tensor | None,
           fake_radii: torch.Tensor | None, chunk: int):
    """One pass over the real x generated distances, reduced as it goes. Returns

    balls (M,) int64, or None without real_radii: for each generated sample, the real balls B(R_i, r_k(R_i)) holding it;
    recalled (N,) bool, or None without fake_radii: whether a real sample lies in some generated ball;
    nearest (N,) float32: each real sample's distance to its nearest generated sample.
    """
    _check_pair(real, fake)
    dev = real.device
    balls = torch.zeros(len(fake), dtype=torch.int64, device=dev) if real_radii is not None else None
    recalled = torch.zeros(len(real), dtype=torch.bool, device=dev) if fake_radii is not None else None
    nearest = torch.full((len(real),), float("inf"), dtype=torch.float32, device=dev)
    for i in range(0, len(real), chunk):
        a, a2 = _block(real[i: i + chunk])
        for j in range(0, len(fake), chunk):
            b, b2 = _block(fake[j: j + chunk])
            d = _tile(a, a2, b, b2)                                     # (rows, cols)
            if balls is not None:
                balls[j: j + len(b)] += (d < real_radii[i: i + chunk, None]).sum(dim=0)
            if recalled is not None:
                recalled[i: i + len(a)] |= (d < fake_radii[None, j: j + chunk]).any(dim=1)
            nearest[i: i + len(a)] = torch.minimum(nearest[i: i + len(a)], d.min(dim=1).values)
    return balls, recalled, nearest


# ---- the four numbers -----------------------------------------------------------------------------------------
def precision(real: torch.Tensor, fake: torch.Tensor, real_radii: torch.Tensor, chunk: int = CHUNK) -> float:
    """Share of generated samples inside at least one real k-NN ball."""
    balls, _, _ = _cross(real, fake, real_radii, None, chunk)
    return int((balls > 0).sum()) / len(fake)


def recall(real: torch.Tensor, fake: torch.Tensor, fake_radii: torch.Tensor, chunk: int = CHUNK) -> float:
    """Share of real samples inside at least one generated k-NN ball."""
    _, recalled, _ = _cross(real, fake, None, fake_radii, chunk)
    return int(recalled.sum()) / len(real)


def density(real: torch.Tensor, fake: torch.Tensor, real_radii: torch.Tensor, k: int, chunk: int = CHUNK) -> float:
    """(1/k) x the mean number of real k-NN balls holding a generated sample (1 for matching distributions)."""
    balls, _, _ = _cross(real, fake, real_radii, None, chunk)
    return (1.0 / k) * (int(balls.sum()) / len(fake))


def coverage(real: torch.Tensor, fake: torch.Tensor, real_radii: torch.Tensor, chunk: int = CHUNK) -> float:
    """Share of real k-NN balls holding at least one generated sample."""
    _, _, nearest = _cross(real, fake, real_radii, None, chunk)
    return int((nearest < real_radii).sum()) / len(real)


def prdc(real: torch.Tensor, fake: torch.Tensor, k: int, chunk: int = CHUNK) -> dict:
    """All four with one k and one cross pass: the same numbers as prdc.compute_prdc(real, fake, k)."""
    real_radii, fake_radii = knn_radii(real, k, chunk), knn_radii(fake, k, chunk)
    balls, recalled, nearest = _cross(real, fake, real_radii, fake_radii, chunk)
    return {
        "precision": int((balls > 0).sum()) / len(fake),
        "recall": int(recalled.sum()) / len(real),
        "density": (1.0 / k) * (int(balls.sum()) / len(fake)),
        "coverage": int((nearest < real_radii).sum()) / len(real),
    }


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = PR_K, chunk: int = CHUNK) -> tuple[float, float]:
    """(precision, recall) with k-NN balls of both sets; three distance passes."""
    real_radii, fake_radii = knn_radii(real, k, chunk), knn_radii(fake, k, chunk)
    balls, recalled, _ = _cross(real, fake, real_radii, fake_radii, chunk)
    return int((balls > 0).sum()) / len(fake), int(recalled.sum()) / len(real)


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = DC_K, chunk: int = CHUNK) -> tuple[float, float]:
    """(density, coverage): only the real set's k-NN balls are needed, so two distance passes."""
    real_radii = knn_radii(real, k, chunk)
    balls, _, nearest = _cross(real, fake, real_radii, None, chunk)
    return (1.0 / k) * (int(balls.sum()) / len(fake)), int((nearest < real_radii).sum()) / len(real)


# ---- the registry shape ---------------------------------------------------------------------------------------
def paired_features(gen: Features, ref: RefStats | None, k: int, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(real (n, D), generated (n, D)) with n = the smaller set: the first n generated features (in order) and the
    first n reference features as held (for a dataset split these are already a fixed random subset)."""
    if ref is None or ref.features is None:
        raise DataError(f"{what} needs the reference's pool3 features; these reference statistics hold only "
                        "mu and sigma", "use a dataset split, a folder or an .npz as the reference, or statistics "
                        "saved with their features")
    real, fake = ref.features, gen.pool3
    n = min(len(real), len(fake))
    if n < k + 1:
        raise DataError(f"{what} with k={k} needs at least {k + 1} images in each set, got {n}",
                        "score more images")
    if real.shape[1] != fake.shape[1]:
        raise DataError(f"reference features are {real.shape[1]}-D, generated ones {fake.shape[1]}-D",
                        "recompute the reference with this network")
    return real[:n], fake[:n]


def _on(device: str | None, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The feature sets on the device where the distance tiles are made (a GPU's, for a score run there)."""
    return tuple(t.to(device) for t in tensors) if device else tensors


def metric_pr(gen: Features, ref: RefStats | None, opts: MetricOptions) -> dict:
    real, fake = _on(opts.device, *paired_features(gen, ref, PR_K, "precision/recall"))
    p, r = precision_recall(real, fake, PR_K)
    return {"precision": p, "recall": r, "pr_n": len(real), "pr_k": PR_K}


def metric_dc(gen: Features, ref: RefStats | None, opts: MetricOptions) -> dict:
    real, fake = _on(opts.device, *paired_features(gen, ref, DC_K, "density/coverage"))
    d, c = density_coverage(real, fake, DC_K)
    return {"density": d, "coverage": c, "dc_n": len(real), "dc_k": DC_K}
