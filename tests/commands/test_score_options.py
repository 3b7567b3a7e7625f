"""`wgan score --metrics pr,dc`, `--resize tf1|clean` and `--repeats K` through the CLI, with stand-in networks (the
real network's resize is tested at the end, on a randomly initialised FID Inception)."""

import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from wgan_cli.cli import app
from wgan_cli.data import images as datasets
from wgan_cli.data.formats import Split
from wgan_cli.metrics import inception, manifold
from wgan_cli.metrics import weights as inception_weights
from wgan_cli.metrics.resize import resize_clean
from wgan_cli.metrics.scores import frechet_distance, statistics

pytestmark = pytest.mark.usefixtures("one_thread")


def run(*args):
    return CliRunner().invoke(app, ["score", *map(str, args)])


def rand_images(n, c=1, size=28, seed=0, low=0, high=256):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(low, high, (n, c, size, size), dtype=torch.uint8, generator=gen)


def write_npz(path, images):
    np.savez(path, images=images.numpy().transpose(0, 2, 3, 1))
    return path


class ResizingNet(nn.Module):
    """The real input pipeline (inception.preprocess: tf1 or clean resize to 299x299, (x - 128) / 128), then a fixed
    random projection of the 8x8-pooled input instead of the Inception layers: fast, and sensitive to the resize."""

    def __init__(self, with_logits=True):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.proj = torch.randn(3 * 64, 24, generator=g) / 4
        self.fc = torch.randn(24, 30, generator=g) if with_logits else None
        self.resize = "tf1"

    def forward(self, images):
        x = inception.preprocess(images, self.resize)                     # (N, 3, 299, 299)
        x = nn.functional.adaptive_avg_pool2d(x, 8).flatten(1)
        f = torch.tanh(x @ self.proj)
        return f, (f @ self.fc if self.fc is not None else None)


@pytest.fixture
def resizing_net(fake_net, monkeypatch):
    monkeypatch.setattr(inception_weights, "load_network", lambda w, device="cpu": ResizingNet(w.has_logits))
    return fake_net


def features(images, resize):
    net = ResizingNet()
    net.resize = resize
    with torch.no_grad():
        return net(images)[0]


# ---- precision/recall, density/coverage ---------------------------------------------------------------------
@pytest.mark.slow
def test_pr_and_dc_are_on_request_and_equal_the_library_on_the_same_features(resizing_net, tmp_path):
    gen, ref = rand_images(30, seed=1), rand_images(40, seed=2)
    a, b = write_npz(tmp_path / "a.npz", gen), write_npz(tmp_path / "b.npz", ref)
    default = json.loads(run(a, "--ref", b, "--json", "--kid-subsets", "2", "-q").stdout)
    assert set(default["metrics"]) == {"is", "is_std", "fid", "kid", "kid_std", "kid_subset_size"}
    assert "manifold_features" not in default

    r = run(a, "--ref", b, "--metrics", "pr,dc", "--json", "-q")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["manifold_features"] == "inception-pool3"
    m = out["metrics"]
    # the first 30 reference features (all are kept: fewer than 10,000) against the 30 generated ones
    expected3 = manifold.prdc(features(ref, "tf1")[:30], features(gen, "tf1"), k=3)
    expected5 = manifold.prdc(features(ref, "tf1")[:30], features(gen, "tf1"), k=5)
    assert m == {"precision": expected3["precision"], "recall": expected3["recall"], "pr_n": 30, "pr_k": 3,
                 "density": expected5["density"], "coverage": expected5["coverage"], "dc_n": 30, "dc_k": 5}
    assert 0 < m["precision"] < 1 and 0 < m["recall"] < 1        # not an all-or-nothing case

    text = run(a, "--ref", b, "--metrics", "pr,dc", "-q")
    assert text.exit_code == 0, text.output
    pr_line, dc_line = text.stdout.splitlines()
    assert pr_line.startswith(f"PR   precision {m['precision']:.4f}  recall {m['recall']:.4f}  (k=3, 30 generated")
    assert dc_line.startswith(f"DC   density {m['density']:.4f}  coverage {m['coverage']:.4f}  (k=5, 30 generated")
    assert "Inception pool3 features, not VGG16" in pr_line and "not VGG16" in dc_line


def test_pr_needs_the_reference_features(resizing_net, tmp_path):
    a = write_npz(tmp_path / "a.npz", rand_images(20, seed=3))
    r = run(a, "--metrics", "pr")
    assert r.exit_code == 2 and "pr compare against reference images" in r.stderr, r.output
    r = run(a, "--ref", a, "--metrics", "pr,dc", "--n", "1")
    assert r.exit_code == 2, r.output


# ---- --resize ---------------------------------------------------------------------------------------------------
def test_resize_reaches_the_network_and_is_reported(resizing_net, tmp_path):
    gen, ref = rand_images(12, seed=4), rand_images(14, seed=5, high=120)
    a, b = write_npz(tmp_path / "a.npz", gen), write_npz(tmp_path / "b.npz", ref)
    fids = {}
    for resize in ("tf1", "clean"):
        r = run(a, "--ref", b, "--metrics", "fid", "--resize", resize, "--json", "-q")
        assert r.exit_code == 0, r.output
        out = json.loads(r.stdout)
        assert out["resize"] == resize
        fids[resize] = out["metrics"]["fid"]
        by_hand = frechet_distance(*statistics(features(gen, resize)), *statistics(features(ref, resize)))
        assert fids[resize] == pytest.approx(by_hand, rel=1e-9)
    assert abs(fids["tf1"] - fids["clean"]) > 1e-3 * fids["tf1"]    # the two resizes give different numbers
    text = run(a, "--ref", b, "--metrics", "fid", "--resize", "clean", "-q").stdout
    assert "clean resize" in text
    assert run(a, "--resize", "bicubic").exit_code == 2


def test_statistics_of_one_resize_are_refused_for_the_other(resizing_net, tmp_path):
    a = write_npz(tmp_path / "a.npz", rand_images(10, seed=6))
    b = write_npz(tmp_path / "b.npz", rand_images(10, seed=7))
    tf1_stats, clean_stats = tmp_path / "tf1.safetensors", tmp_path / "clean.safetensors"
    assert run("--ref", b, "--save-stats", tf1_stats).exit_code == 0
    assert run("--ref", b, "--save-stats", clean_stats, "--resize", "clean").exit_code == 0
    r = run(a, "--ref", tf1_stats, "--metrics", "fid", "--resize", "clean")
    assert r.exit_code == 2, r.output
    assert "resized with tf1, not clean" in r.stderr and "hint: use --resize tf1" in r.stderr
    r = run(a, "--ref", clean_stats, "--metrics", "fid")
    assert r.exit_code == 2 and "resized with clean, not tf1" in r.stderr, r.output
    direct = json.loads(run(a, "--ref", b, "--metrics", "fid", "--resize", "clean", "--json").stdout)
    via_file = json.loads(run(a, "--ref", clean_stats, "--metrics", "fid", "--resize", "clean", "--json").stdout)
    assert via_file["metrics"]["fid"] == pytest.approx(direct["metrics"]["fid"], rel=1e-12)


def test_dataset_statistics_are_cached_per_resize(resizing_net, tmp_path, monkeypatch):
    def read(root, download):
        return Split(rand_images(20, seed=8).numpy(), None), Split(rand_images(8, seed=9).numpy(), None), root

    monkeypatch.setitem(datasets.DATASETS, "toyset", datasets.Dataset(8, 0, read))
    a = write_npz(tmp_path / "a.npz", rand_images(10, seed=10))
    results = {}
    for resize in ("tf1", "clean", "tf1"):
        r = run(a, "--ref", "toyset:train", "--metrics", "fid", "--resize", resize, "--json")
        assert r.exit_code == 0, r.output
        results.setdefault(resize, []).append(json.loads(r.stdout)["metrics"]["fid"])
    names = sorted(p.name for p in (tmp_path / "cache" / "stats").iterdir())
    assert names == ["toyset-train-fake0001-clean.safetensors", "toyset-train-fake0001.safetensors"]
    assert results["tf1"][0] == results["tf1"][1] != results["clean"][0]


@pytest.mark.slow
def test_the_fid_network_resizes_the_clean_way(one_thread):
    """The real network (random weights): resize="clean" feeds it clean-fid's resize, grayscale repeated after."""
    torch.manual_seed(0)
    net = inception.FIDInception(with_logits=False, resize="clean").eval()
    with torch.no_grad():   # variance-preserving init: default-initialised layers shrink every feature to ~1e-8
        for layer in inception.conv_layers(net):
            torch.nn.init.kaiming_normal_(layer.conv.weight, nonlinearity="relu")
    x = rand_images(2, c=1, size=28, seed=11)
    with torch.no_grad():
        got, _ = net(x)
        expected = net.pool3((resize_clean(x).expand(-1, 3, -1, -1) - 128) / 128)
        net.resize = "tf1"
        tf1, _ = net(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert (got - tf1).abs().max() > 1e-2 * got.abs().max()
    with pytest.raises(ValueError, match="unknown resize"):
        inception.preprocess(x, "bicubic")


# ---- --repeats ------------------------------------------------------------------------------------------------
def test_repeats_score_independent_sample_sets_and_report_mean_and_std(resizing_net, tiny_ckpt, tmp_path):
    tiny_ckpt, _ = tiny_ckpt
    ref = write_npz(tmp_path / "ref.npz", rand_images(40, size=8, seed=12))
    common = ["--ref", ref, "--n", "24", "--metrics", "fid,kid,is", "--splits", "3", "--kid-subsets", "3", "--json",
              "-q"]
    r = run(tiny_ckpt, *common, "--seed", "5", "--repeats", "3")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["repeats"] == 3 and out["seeds"] == [5, 6, 7] and out["n"] == 24
    # each repeat is exactly the single run with that seed
    singles = [json.loads(run(tiny_ckpt, *common, "--seed", str(s)).stdout)["metrics"] for s in (5, 6, 7)]
    assert out["per_repeat"] == singles
    fids = [s["fid"] for s in singles]
    assert len(set(fids)) == 3                                     # independent sets: three different numbers
    mean = sum(fids) / 3
    assert out["metrics"]["fid"] == pytest.approx(mean, rel=1e-12)
    assert out["metrics_std"]["fid"] == pytest.approx(math.sqrt(sum((f - mean) ** 2 for f in fids) / 3), rel=1e-9)
    assert out["metrics"]["kid_subset_size"] == 24 and "kid_subset_size" not in out["metrics_std"]
    text = run(tiny_ckpt, *common[:-2], "--seed", "5", "--repeats", "3", "-q").stdout
    fid_line = next(line for line in text.splitlines() if line.startswith("FID"))
    assert f"{mean:.4f} +- {out['metrics_std']['fid']:.4f}" in fid_line and "3 sample sets, seeds 5..7" in fid_line


def test_repeats_need_a_checkpoint(resizing_net, tmp_path):
    a = write_npz(tmp_path / "a.npz", rand_images(10, seed=13))
    r = run(a, "--ref", a, "--repeats", "2")
    assert r.exit_code == 2 and "--repeats 2 needs a generator checkpoint" in r.stderr, r.output
    assert run(a, "--ref", a, "--repeats", "0").exit_code == 2
