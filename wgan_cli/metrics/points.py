"""Metrics for 2-D point sets: exact Wasserstein-1 by optimal assignment, and mode coverage."""

from __future__ import annotations

import torch


def wasserstein1(a: torch.Tensor, b: torch.Tensor) -> float:
    """Exact W1 between two equal-size empirical distributions: the mean distance of the optimal matching."""
    from scipy.optimize import linear_sum_assignment   # deferred: SciPy costs a second at start-up

    if a.shape != b.shape:
        raise ValueError(f"point sets differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    cost = torch.cdist(a.double().cpu(), b.double().cpu()).numpy()
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def mode_coverage(points: torch.Tensor, centers: torch.Tensor) -> dict:
    """Share of points nearest to each centre, and the distance of each point to its nearest centre."""
    d = torch.cdist(points.double().cpu(), centers.double().cpu())   # (N, K)
    nearest, which = d.min(dim=1)
    share = torch.bincount(which, minlength=len(centers)).double() / len(points)
    return {
        "mode_share": share.tolist(),
        "modes_covered": int((share > 0).sum()),
        "min_mode_share": float(share.min()),
        "max_mode_share": float(share.max()),
        "median_dist": float(nearest.median()),
        "mean_dist": float(nearest.mean()),
    }
