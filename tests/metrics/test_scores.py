"""IS / FID / KID maths: closed-form oracles, and equality with torch-fidelity's and pytorch-fid's formulas on the
same features or logits (those packages are test-only dependencies: `make test-deps`)."""

import math

import numpy as np
import pytest
import torch

from wgan_cli.metrics.inputs import Features, MetricOptions, RefStats
from wgan_cli.metrics.registry import METRICS, choose_metrics
from wgan_cli.metrics.scores import frechet_distance, inception_score, kernel_inception_distance, statistics


def gaussian_features(n, d, shift=0.0, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) + shift


# ---- FID ----------------------------------------------------------------------------------------------------
def test_fid_of_unit_gaussians_two_apart_in_4d_is_16():
    eye = torch.eye(4, dtype=torch.float64)
    assert frechet_distance(torch.zeros(4), eye, torch.full((4,), 2.0), eye) == pytest.approx(16.0, abs=1e-12)
    # and from samples: the estimate converges to 16
    a, b = gaussian_features(200_000, 4, 0.0, 1), gaussian_features(200_000, 4, 2.0, 2)
    assert frechet_distance(*statistics(a), *statistics(b)) == pytest.approx(16.0, abs=0.05)


def test_fid_of_covariances_alone_matches_the_closed_form():
    # N(0, a^2 I) vs N(0, b^2 I) in d dimensions: d (a - b)^2
    d = 6
    s1, s2 = 4.0 * torch.eye(d, dtype=torch.float64), 9.0 * torch.eye(d, dtype=torch.float64)
    assert frechet_distance(torch.zeros(d), s1, torch.zeros(d), s2) == pytest.approx(d * (2 - 3) ** 2, abs=1e-10)


@pytest.mark.parametrize("n,d", [(3000, 64), (100, 256)])   # full-rank and singular covariances
def test_fid_of_a_set_with_itself_is_zero(n, d):
    mu, sigma = statistics(gaussian_features(n, d) * torch.linspace(0.1, 3, d))
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-6


def test_statistics_equal_numpy_and_do_not_depend_on_the_chunk_size():
    f = gaussian_features(1000, 32) * 3 + 1
    ref_mu, ref_cov = f.double().numpy().mean(0), np.cov(f.double().numpy(), rowvar=False)
    for chunk in (7, 128, 4096):
        mu, sigma = statistics(f, chunk=chunk)
        assert mu.dtype == sigma.dtype == torch.float64
        np.testing.assert_allclose(mu.numpy(), ref_mu, rtol=0, atol=1e-12)
        np.testing.assert_allclose(sigma.numpy(), ref_cov, rtol=0, atol=1e-11)


@pytest.mark.slow
def test_fid_equals_torch_fidelity_and_pytorch_fid_on_the_same_statistics():
    fid_tf = pytest.importorskip("torch_fidelity.metric_fid", reason="torch-fidelity not installed (make test-deps)")
    fid_pf = pytest.importorskip("pytorch_fid.fid_score", reason="pytorch-fid not installed (make test-deps)")
    a = torch.rand(400, 256, generator=torch.Generator().manual_seed(3))
    b = gaussian_features(400, 256, 0.3, 4) * 0.4
    (m1, s1), (m2, s2) = statistics(a), statistics(b)
    ours = frechet_distance(m1, s1, m2, s2)
    theirs_tf = fid_tf.fid_statistics_to_metric({"mu": m1.numpy(), "sigma": s1.numpy()},
                                                {"mu": m2.numpy(), "sigma": s2.numpy()}, False)
    theirs_pf = fid_pf.calculate_frechet_distance(m1.numpy(), s1.numpy(), m2.numpy(), s2.numpy())
    assert ours == pytest.approx(theirs_tf["frechet_inception_distance"], rel=1e-6)
    assert ours == pytest.approx(theirs_pf, rel=1e-6)


# ---- IS -----------------------------------------------------------------------------------------------------
def test_uniform_predictions_give_inception_score_one():
    mean, std = inception_score(torch.zeros(100, 1008), splits=10)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("k", [1, 7, 10])
def test_k_confident_distinct_classes_give_inception_score_k(k):
    logits = torch.full((k * 20, 1008), -1e4)
    logits[torch.arange(k * 20), torch.arange(k * 20) % k] = 0.0     # sample i is certainly class i mod k
    mean, _ = inception_score(logits, splits=1)
    assert mean == pytest.approx(k, rel=1e-9)


def test_inception_score_equals_torch_fidelity_on_the_same_logits():
    isc = pytest.importorskip("torch_fidelity.metric_isc", reason="torch-fidelity not installed (make test-deps)")
    logits = torch.randn(1000, 1008, generator=torch.Generator().manual_seed(5)) * 3
    # our metric shuffles with RandomState(seed) exactly as torch-fidelity does with its rng_seed
    ours = METRICS["is"].fn(Features(torch.zeros(1000, 1), logits), None, MetricOptions(splits=10, seed=2020))
    theirs = isc.isc_features_to_metric(logits, splits=10, shuffle=True, rng_seed=2020)
    assert ours["is"] == pytest.approx(theirs["inception_score_mean"], rel=1e-10)
    assert ours["is_std"] == pytest.approx(theirs["inception_score_std"], rel=1e-8)


# ---- KID ----------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_kid_equals_torch_fidelity_with_the_same_subsets():
    kid = pytest.importorskip("torch_fidelity.metric_kid", reason="torch-fidelity not installed (make test-deps)")
    a = torch.rand(300, 2048, generator=torch.Generator().manual_seed(6))
    b = torch.rand(250, 2048, generator=torch.Generator().manual_seed(7)) * 1.1
    mean, std, size = kernel_inception_distance(a, b, subsets=10, subset_size=200, seed=11)
    theirs = kid.kid_features_to_metric(a, b, kid_subsets=10, kid_subset_size=200, rng_seed=11, verbose=False)
    assert size == 200
    assert mean == pytest.approx(theirs["kernel_inception_distance_mean"], abs=1e-6)
    assert std == pytest.approx(theirs["kernel_inception_distance_std"], abs=1e-6)
    assert mean > 1e-3   # the sets differ: a clearly positive MMD


def test_kid_of_two_samples_of_one_distribution_is_near_zero_and_subset_size_is_capped():
    a, b = gaussian_features(400, 64, 0, 8), gaussian_features(300, 64, 0, 9)
    mean, std, size = kernel_inception_distance(a, b, subsets=10, subset_size=1000, seed=0)
    assert size == 300
    assert abs(mean) < 5 * std + 1e-3


# ---- the registry -------------------------------------------------------------------------------------------
def test_metrics_registry_runs_each_metric_on_features_and_reference():
    gen = Features(gaussian_features(120, 16, 0.5, 1), torch.randn(120, 1008))
    f_ref = gaussian_features(150, 16, 0.0, 2)
    ref = RefStats(*statistics(f_ref), f_ref, 150)
    out = {}
    for name, metric in METRICS.items():
        out.update(metric.fn(gen, ref if metric.needs_ref else None, MetricOptions(splits=4, kid_subsets=5)))
    assert set(out) == {"is", "is_std", "fid", "kid", "kid_std", "kid_subset_size", "precision", "recall", "pr_n",
                        "pr_k", "density", "coverage", "dc_n", "dc_k"}
    assert out["fid"] == pytest.approx(frechet_distance(*statistics(gen.pool3), *statistics(f_ref)))
    assert out["fid"] > 16 * 0.25 * 0.5 and math.isfinite(out["is"])   # mean shift 0.5 in 16-D: |dmu|^2 ~ 4
    assert (out["pr_n"], out["pr_k"], out["dc_n"], out["dc_k"]) == (120, 3, 120, 5)
    # pr and dc (extra distance passes) only when asked for
    assert choose_metrics(None, has_ref=True, has_logits=True)[0] == ["is", "fid", "kid"]
    assert choose_metrics(["fid", "pr", "dc"], has_ref=True, has_logits=False)[0] == ["fid", "pr", "dc"]
