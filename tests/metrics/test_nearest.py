"""The nearest-neighbour search and nearest_ratio of `wgan score --nearest` (metrics/nearest.py), on vectors."""

import json
import math

import pytest
import torch

from wgan_cli.metrics import nearest
from wgan_cli.metrics.nearest import nearest_ratio, search


def brute(queries, train, k):
    """The oracle: every distance as the norm of the difference in float64, sorted (stable: ties by index)."""
    d = (queries.double()[:, None, :] - train.double()[None, :, :]).norm(dim=2)
    order = d.argsort(dim=1, stable=True)[:, :k]
    return d.gather(1, order), order


def test_search_equals_brute_force_across_chunks(monkeypatch):
    monkeypatch.setattr(nearest, "CHUNK_FLOATS", 300 * 16)   # chunks of 300 rows: the merge across chunks is used
    g = torch.Generator().manual_seed(0)
    train = torch.randn(1000, 16, generator=g) * 3 + 10      # an offset: |t|^2 >> distances, float32 cancels
    queries = torch.randn(50, 16, generator=g) * 3 + 10
    d, i = search(queries, train, 7)
    want_d, want_i = brute(queries, train, 7)
    assert torch.equal(i, want_i)
    # distances are recomputed in float64 from the same float32 vectors: equal to the oracle's up to the order of
    # the float64 sum (~1e-16 relative)
    assert torch.allclose(d, want_d, rtol=1e-12, atol=0)


def test_a_planted_duplicate_is_its_own_nearest_neighbour_at_distance_zero():
    g = torch.Generator().manual_seed(1)
    train = torch.randn(5000, 2048, generator=g).abs() * 2   # pool3-like: non-negative, |t|^2 ~ 8000
    queries = torch.cat([train[[1234, 42]], torch.randn(3, 2048, generator=g).abs() * 2])
    d, i = search(queries, train, 3)
    assert i[:2, 0].tolist() == [1234, 42]
    # the same float32 numbers, subtracted in float64: exactly 0 (the matrix-product form alone would leave
    # ~sqrt(1e-7 * 2 * 8000) ~ 0.04 of float32 rounding)
    assert d[:2, 0].tolist() == [0.0, 0.0]
    assert (d[2:, 0] > 10).all()   # independent vectors: sqrt(2 * 2048 * var) ~ 38 apart


def test_uint8_pixels_are_searched_in_the_unit_range():
    g = torch.Generator().manual_seed(2)
    train = torch.randint(0, 256, (200, 3 * 8 * 8), dtype=torch.uint8, generator=g)
    queries = train[[7, 9]].clone()
    queries[1, 0] = 255 - int(queries[1, 0])   # one pixel changed by |255 - 2 v|
    d, i = search(queries, train, 1, scale=1 / 255)
    assert i[:, 0].tolist() == [7, 9]
    expected = abs(255 - 2 * int(train[9, 0])) / 255
    assert d[0, 0].item() == 0.0 and d[1, 0].item() == pytest.approx(expected, rel=1e-12)


def test_the_ratio_is_about_one_for_held_out_like_samples_and_near_zero_for_copies():
    g = torch.Generator().manual_seed(3)
    train, held, fresh = (torch.randn(n, 32, generator=g) for n in (2000, 500, 500))
    d_held = search(held, train, 1)[0][:, 0]
    like = nearest_ratio(search(fresh, train, 1)[0][:, 0], d_held)
    # samples from the data's own distribution: the ratio's only error is the noise of two means of 500, which the
    # standard error measures; 4 standard errors leave a false failure at ~1e-4
    assert abs(like["nearest_ratio"] - 1) < 4 * like["nearest_ratio_se"]
    assert 0 < like["nearest_ratio_se"] < 0.05
    assert like["closer_than_heldout"] < 0.02          # about 1/501 expected
    copies = train[:500] + 0.01 * torch.randn(500, 32, generator=g)   # a generator that reproduces training images
    copied = nearest_ratio(search(copies, train, 1)[0][:, 0], d_held)
    # each copy sits 0.01 * sqrt(32) ~ 0.06 from its original, a new real image ~ 4 from its nearest neighbour
    assert copied["nearest_ratio"] < 0.05
    assert copied["closer_than_heldout"] == 1.0


def test_the_ratio_of_known_distances():
    r = nearest_ratio(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 4.0, 6.0]))
    assert r["nearest_ratio"] == pytest.approx(0.5) and r["sample_distance"] == 2.0 and r["heldout_distance"] == 4.0
    # delta method: 0.5 * sqrt(var_s / (n_s m_s^2) + var_h / (n_h m_h^2)) = 0.5 * sqrt(2 / 8 + 4 / 48)
    assert r["nearest_ratio_se"] == pytest.approx(0.5 * math.sqrt(2 / 8 + 4 / 48))
    assert r["closer_than_heldout"] == 0.5


def test_held_out_images_that_are_all_training_images_give_no_ratio_and_valid_json():
    # every held-out image has a copy among the training images: its nearest distance is 0, so the ratio has no
    # denominator; it is None (valid JSON), never inf or nan
    r = nearest_ratio(torch.tensor([1.0, 3.0]), torch.zeros(4, dtype=torch.float64))
    assert r["nearest_ratio"] is None and r["nearest_ratio_se"] is None and r["sample_distance"] == 2.0
    json.loads(json.dumps(r, allow_nan=False))
