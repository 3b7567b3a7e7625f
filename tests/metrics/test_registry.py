"""metrics/registry.py: the one path from features to numbers that `wgan score` and the in-training evaluation take."""

import pytest
import torch

from wgan_cli.errors import DataError
from wgan_cli.metrics.inputs import Features, MetricOptions, RefStats
from wgan_cli.metrics.references import ref_stats
from wgan_cli.metrics.registry import compute


def features(n, d, seed):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def test_compute_gives_each_named_metric_once():
    pool3 = features(60, 4, 0)
    gen = Features(pool3, logits=torch.zeros(60, 5))   # a uniform classifier: IS exactly 1
    ref = ref_stats(pool3, "the same set")
    values = compute(["fid", "is", "kid"], gen, ref, MetricOptions(splits=3, kid_subsets=4, kid_subset_size=20))
    assert set(values) == {"fid", "is", "is_std", "kid", "kid_std", "kid_subset_size"}
    # a set against its own statistics: FID 0 up to float64 rounding of 4x4 covariances (entries ~1, 1e-12 is
    # ~1e4 ulps of slack); IS of uniform class probabilities is exp(0) = 1 in every split, so its std is 0
    assert abs(values["fid"]) < 1e-12
    assert values["is"] == pytest.approx(1.0, abs=1e-12) and values["is_std"] == pytest.approx(0.0, abs=1e-12)
    assert values["kid_subset_size"] == 20


def test_compute_refuses_statistics_of_another_network():
    gen = Features(features(10, 4, 1))
    ref = RefStats(torch.zeros(8, dtype=torch.float64), torch.eye(8, dtype=torch.float64), None, 10, "cifar10:train")
    with pytest.raises(DataError, match=r"^stats\.safetensors: statistics of 8-D features, the network gives 4-D"):
        compute(["fid"], gen, ref, MetricOptions(), ref_name="stats.safetensors")
    with pytest.raises(DataError, match=r"^cifar10:train: statistics of 8-D"):   # named by its source
        compute(["fid"], gen, ref, MetricOptions())
