"""N-gram distributions and the JS divergence in bits (Table 4's metric)."""

import math

import torch

from wgan_cli.metrics.ngrams import NgramDist, js_divergence, js_report, ngram_distribution, distributions


def dist(keys, probs):
    return NgramDist(torch.tensor(keys, dtype=torch.int64), torch.tensor(probs, dtype=torch.float64))


def test_js_of_a_distribution_with_itself_is_zero_and_of_disjoint_ones_is_one_bit():
    idx = torch.randint(0, 9, (50, 8), generator=torch.Generator().manual_seed(0))
    for n in (1, 2, 3, 4):
        p = ngram_distribution(idx, n, 9)
        assert abs(js_divergence(p, p)) < 1e-12
    a = torch.zeros(5, 8, dtype=torch.long)        # only character 0
    b = torch.ones(5, 8, dtype=torch.long)         # only character 1
    for n in (1, 2, 3, 4):
        assert abs(js_divergence(ngram_distribution(a, n, 2), ngram_distribution(b, n, 2)) - 1.0) < 1e-12


def test_js_matches_the_closed_form():
    # p = (1, 0), q = (1/2, 1/2): m = (3/4, 1/4); JS = 0.5 log2(4/3) + 0.25 log2(2/3) + 0.25 log2(2)
    expected = 0.5 * math.log2(4 / 3) + 0.25 * math.log2(2 / 3) + 0.25
    assert abs(js_divergence(dist([0], [1.0]), dist([0, 1], [0.5, 0.5])) - expected) < 1e-12
    assert abs(js_divergence(dist([0, 1], [0.5, 0.5]), dist([0], [1.0])) - expected) < 1e-12   # symmetric


def test_ngram_counts_over_the_padded_sequence():
    idx = torch.tensor([[1, 2, 1, 2]])   # bigrams 12, 21, 12
    p = ngram_distribution(idx, 2, base=3)
    assert p.keys.tolist() == [1 * 3 + 2, 2 * 3 + 1]
    assert torch.allclose(p.probs, torch.tensor([2 / 3, 1 / 3], dtype=torch.float64))
    ref = distributions(idx, 3)
    assert set(ref) == {1, 2, 3, 4}
    report = js_report(idx, ref, 3)
    assert set(report) == {"js1", "js2", "js3", "js4"} and max(report.values()) < 1e-12
