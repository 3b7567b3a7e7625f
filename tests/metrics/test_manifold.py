"""Precision/recall and density/coverage: hand-computed oracles, chunked == unchunked, and the reference
implementation `prdc` on the same features (to 1e-6)."""

import contextlib
import io

import numpy as np
import pytest
import torch

from wgan_cli.errors import DataError
from wgan_cli.metrics import manifold
from wgan_cli.metrics.inputs import Features, MetricOptions, RefStats
from wgan_cli.metrics.scores import statistics

BIG = 10**9   # a chunk larger than any set here: one tile, the unchunked computation


def gaussians(n_real, n_fake, d, seed, shift=0.3, scale=1.2):
    """Real N(0, I) and generated N(shift, scale^2 I) float32 features: overlapping, so no score is 0 or 1."""
    rng = np.random.RandomState(seed)
    real = rng.randn(n_real, d).astype(np.float32)
    fake = (rng.randn(n_fake, d) * scale + shift).astype(np.float32)
    return real, fake


def test_knn_radii_equal_sorted_full_distances():
    real, _ = gaussians(97, 1, 8, seed=0)
    x = torch.from_numpy(real)
    full = torch.cdist(x.double(), x.double())                       # (97, 97), the oracle
    for k in (1, 3, 5):
        expected = full.sort(dim=1).values[:, k]                     # column 0 is the point itself
        torch.testing.assert_close(manifold.knn_radii(x, k, chunk=10).double(), expected, rtol=1e-6, atol=1e-6)


def test_radii_ignore_the_point_itself_but_count_duplicates():
    # 0, 0 (a duplicate), 1, 3 on a line: the duplicate's distance 0 is a real neighbour, the point itself is not
    x = torch.tensor([[0.0], [0.0], [1.0], [3.0]])
    assert manifold.knn_radii(x, 1).tolist() == [0.0, 0.0, 1.0, 2.0]
    assert manifold.knn_radii(x, 2).tolist() == [1.0, 1.0, 1.0, 3.0]
    with pytest.raises(ValueError, match="k=4 need at least 5 points, got 4"):
        manifold.knn_radii(x, 4)


def test_scores_on_a_line_by_hand():
    # real 0..9 (k=1: every radius 1); generated 0.5 (inside the balls of 0 and 1) and 10.0, exactly on the edge of
    # 9's ball: outside, since the comparison is strict. Generated radii (k=1): 9.5, which holds every real point.
    real = torch.arange(10.0)[:, None]
    fake = torch.tensor([[0.5], [10.0]])
    got = manifold.prdc(real, fake, k=1)
    assert got == {"precision": 0.5, "recall": 1.0, "density": 1.0, "coverage": 0.2}


def test_same_set_and_far_set():
    real, _ = gaussians(120, 1, 16, seed=1)
    x = torch.from_numpy(real)
    same = manifold.prdc(x, x.clone(), k=3)
    # every generated point sits on a real one (distance 0 < its radius), and vice versa
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    far = manifold.prdc(x, x + 100.0, k=3)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_chunked_equals_unchunked():
    real, fake = gaussians(150, 130, 32, seed=2)
    r, f = torch.from_numpy(real), torch.from_numpy(fake)
    torch.testing.assert_close(manifold.knn_radii(r, 3, chunk=7), manifold.knn_radii(r, 3, chunk=BIG),
                               rtol=1e-6, atol=0)
    for k in (3, 5):
        tiny, whole = manifold.prdc(r, f, k, chunk=7), manifold.prdc(r, f, k, chunk=BIG)
        assert tiny == whole
        assert 0 < whole["precision"] < 1 and 0 < whole["recall"] < 1 and 0 < whole["coverage"] < 1
    # the single-score functions and the pairs agree with the combined pass
    rr, fr = manifold.knn_radii(r, 3, chunk=11), manifold.knn_radii(f, 3, chunk=11)
    both = manifold.prdc(r, f, 3)
    assert manifold.precision(r, f, rr, chunk=11) == both["precision"]
    assert manifold.recall(r, f, fr, chunk=11) == both["recall"]
    assert manifold.density(r, f, rr, 3, chunk=11) == both["density"]
    assert manifold.coverage(r, f, rr, chunk=11) == both["coverage"]
    assert manifold.precision_recall(r, f, 3, chunk=11) == (both["precision"], both["recall"])
    assert manifold.density_coverage(r, f, 3, chunk=11) == (both["density"], both["coverage"])


def test_no_distance_tile_exceeds_the_chunk(monkeypatch):
    real, fake = gaussians(50, 41, 8, seed=9)
    shapes = []
    original = manifold._tile

    def recording_tile(*args):
        d = original(*args)
        shapes.append(tuple(d.shape))
        return d

    monkeypatch.setattr(manifold, "_tile", recording_tile)
    manifold.prdc(torch.from_numpy(real), torch.from_numpy(fake), 3, chunk=16)
    assert max(max(s) for s in shapes) == 16
    # every pair of rows met exactly once per pass: real x real, fake x fake, real x fake
    assert sum(a * b for a, b in shapes) == 50 * 50 + 41 * 41 + 50 * 41


def _features(n_gen, n_ref, d, seed):
    real, fake = gaussians(n_ref, n_gen, d, seed)
    ref_feats = torch.from_numpy(real)
    mu, sigma = statistics(ref_feats)
    return Features(pool3=torch.from_numpy(fake)), RefStats(mu, sigma, ref_feats, n=5 * n_ref, source="test")


def test_registry_functions_pair_equal_numbers():
    gen, ref = _features(n_gen=180, n_ref=140, d=24, seed=3)
    pr = manifold.metric_pr(gen, ref, MetricOptions())
    dc = manifold.metric_dc(gen, ref, MetricOptions())
    # the first 140 generated features (in order) against the 140 reference features as held
    expected3 = manifold.prdc(ref.features[:140], gen.pool3[:140], k=3)
    expected5 = manifold.prdc(ref.features[:140], gen.pool3[:140], k=5)
    assert pr == {"precision": expected3["precision"], "recall": expected3["recall"], "pr_n": 140, "pr_k": 3}
    assert dc == {"density": expected5["density"], "coverage": expected5["coverage"], "dc_n": 140, "dc_k": 5}
    # fewer generated than reference features: the generated count decides
    gen_small = Features(pool3=gen.pool3[:60])
    assert manifold.metric_pr(gen_small, ref, MetricOptions())["pr_n"] == 60


def test_registry_functions_refuse_missing_features_and_tiny_sets():
    gen, ref = _features(n_gen=20, n_ref=20, d=4, seed=4)
    no_feats = RefStats(ref.mu, ref.sigma, None, n=20)
    with pytest.raises(DataError, match="hold only mu and sigma"):
        manifold.metric_pr(gen, no_feats, MetricOptions())
    with pytest.raises(DataError, match="reference's pool3 features"):
        manifold.metric_dc(gen, None, MetricOptions())
    with pytest.raises(DataError, match="k=5 needs at least 6 images"):
        manifold.metric_dc(Features(pool3=gen.pool3[:5]), ref, MetricOptions())


# ---- the reference implementation --------------------------------------------------------------------------
def _prdc_module():
    return pytest.importorskip("prdc", reason="prdc not installed (pip install prdc==0.2; the test extra has it)")


@pytest.mark.slow
@pytest.mark.parametrize("n_real,n_fake,d,k,seed", [(300, 300, 64, 3, 5), (260, 310, 16, 5, 6), (200, 200, 128, 3, 7)])
def test_matches_prdc(n_real, n_fake, d, k, seed):
    prdc = _prdc_module()
    real, fake = gaussians(n_real, n_fake, d, seed)
    with contextlib.redirect_stdout(io.StringIO()):                  # compute_prdc prints the set sizes
        expected = prdc.compute_prdc(real, fake, k)
    got = manifold.prdc(torch.from_numpy(real), torch.from_numpy(fake), k, chunk=64)
    assert set(got) == set(expected)
    for name in expected:
        assert abs(got[name] - float(expected[name])) <= 1e-6, (name, got[name], expected[name])
    assert 0 < got["precision"] < 1 and 0 < got["coverage"] < 1     # not a degenerate all-or-nothing case
    radii = prdc.prdc.compute_nearest_neighbour_distances(real, k)
    np.testing.assert_allclose(manifold.knn_radii(torch.from_numpy(real), k, chunk=64).numpy(), radii,
                               rtol=1e-6, atol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu():
    real, fake = gaussians(500, 400, 64, seed=8)
    r, f = torch.from_numpy(real), torch.from_numpy(fake)
    assert manifold.prdc(r.cuda(), f.cuda(), 3, chunk=128) == manifold.prdc(r, f, 3, chunk=128)
