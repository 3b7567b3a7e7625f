"""The memorisation check of `wgan score --nearest`: exact nearest-neighbour search of a set of vectors (Inception
pool3 features, or flattened pixels) among the training set's, and nearest_ratio, the number that says whether the
samples sit closer to the training images than new real images do.

The search runs in chunks of training rows, so 60,000 x 2048 features (or 60,000 images as uint8 pixels) need only
a chunk's floats at a time: squared distances |q|^2 + |t|^2 - 2 q.t by one matrix product per chunk, the best
candidates kept, then the distances of the candidates computed again as the norm of the difference in float64.
The product form loses ~1e-7 |q|^2 to float32 rounding (a duplicate would sit at ~1e-3 instead of 0); the
recomputed distance of two identical vectors is exactly 0.
"""

from __future__ import annotations

import math

import torch

CHUNK_FLOATS = 2**26   # floats per chunk of training rows (256 MiB as float32)
SPARE = 8              # candidates kept beyond k per chunk: the float32 ranking may swap near-equal distances


def search(queries: torch.Tensor, train: torch.Tensor, k: int, *, scale: float = 1.0,
           device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest rows of `train` (N, D) to each row of `queries` (Q, D), by Euclidean distance, both read as
    float times `scale` (1/255 for uint8 pixels). Returns (distances (Q, k) float64, indices (Q, k) int64) on the
    CPU, nearest first; ties in index order."""
    assert 1 <= k <= len(train), "k must be between 1 and the number of training rows"
    device = torch.device(device) if device is not None else queries.device
    q = queries.to(device).float() * scale
    q2 = (q * q).sum(1, keepdim=True)                                             # (Q, 1)
    keep = min(len(train), k + SPARE)
    best_d = torch.full((len(q), 0), math.inf, device=device)
    best_i = torch.zeros((len(q), 0), dtype=torch.long, device=device)
    rows = max(256, CHUNK_FLOATS // max(1, train.shape[1]))
    for start in range(0, len(train), rows):
        t = train[start: start + rows].to(device).float() * scale                    # (B, D)
        d2 = (q2 + (t * t).sum(1)[None, :] - 2 * q @ t.T).clamp_min_(0)              # (Q, B)
        d, i = torch.topk(d2, min(keep, len(t)), dim=1, largest=False, sorted=False)
        best_d, best_i = torch.cat([best_d, d], 1), torch.cat([best_i, i + start], 1)
        if best_d.shape[1] > keep:
            best_d, pick = torch.topk(best_d, keep, dim=1, largest=False, sorted=False)
            best_i = best_i.gather(1, pick)
    cand = best_i.cpu()                                                              # (Q, keep)
    exact = torch.empty(cand.shape, dtype=torch.float64)
    per = max(1, CHUNK_FLOATS // 4 // max(1, keep * train.shape[1]))   # float64 differences: 128 MiB
    for s in range(0, len(q), per):
        diff = train[cand[s: s + per]].double() * scale - queries[s: s + per, None, :].cpu().double() * scale
        exact[s: s + per] = diff.norm(dim=2)
    # nearest first; equal distances in index order (a stable sort of the candidates ordered by index)
    by_index = cand.argsort(dim=1)
    cand, exact = cand.gather(1, by_index), exact.gather(1, by_index)
    order = exact.argsort(dim=1, stable=True)[:, :k]
    return exact.gather(1, order), cand.gather(1, order)


def nearest_ratio(sample_d: torch.Tensor, heldout_d: torch.Tensor) -> dict:
    """Distances of samples and of held-out real images to their nearest training image -> the summary.

    nearest_ratio = mean sample distance / mean held-out distance: ~1 when the samples are as far from the training
    set as new real images are, well below 1 when the generator reproduces training images (above 1: the samples
    are further from the data than real images, a matter of quality, not of copying). Its standard error is the
    delta method's for a ratio of two independent means. closer_than_heldout is the share of samples nearer to a
    training image than every held-out image is: about 1/(M + 1) for samples like new real images, a copy each."""
    s, h = sample_d.double(), heldout_d.double()
    ms, mh = s.mean().item(), h.mean().item()
    if mh > 0:
        ratio = ms / mh
        rel2 = (s.var().item() / (len(s) * ms ** 2) if len(s) > 1 and ms > 0 else 0.0) + \
               (h.var().item() / (len(h) * mh ** 2) if len(h) > 1 else 0.0)
        se = ratio * math.sqrt(rel2)
    else:   # every held-out image is also a training image: nothing to compare with (None keeps the JSON valid)
        ratio = se = None
    return {"nearest_ratio": ratio, "nearest_ratio_se": se, "sample_distance": ms, "heldout_distance": mh,
            "closer_than_heldout": (s < h.min()).double().mean().item()}
