"""wgan_cli.load: image k comes from seed k whatever else is drawn, in whatever batch; truncation; latents in and
out; errors without command-line flags."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import wgan_cli
from checkpoints import make_checkpoint
from wgan_cli import api
from wgan_cli.cli import app
from wgan_cli.errors import CheckpointError, UsageError

pytestmark = pytest.mark.usefixtures("one_thread")


def sample(*args):
    return CliRunner().invoke(app, ["sample", *map(str, args)])


@pytest.fixture
def cond(tmp_path):
    return make_checkpoint(tmp_path / "cond.safetensors", "resnet-cond")


def test_load_says_what_the_generator_is(tmp_path, cond):
    G = wgan_cli.load(cond)
    assert G.spec.task == "image" and G.spec.arch == "resnet" and G.spec.n_classes == 10
    assert (G.spec.size, G.spec.channels, G.spec.pixel_range, G.spec.z_dim) == (32, 3, "tanh", 16)
    assert G.spec.digest == api.checkpoint.read_meta(cond)["digest"] and isinstance(G.module, torch.nn.Module)
    images = G.sample(5, seed=0)
    assert images.dtype == torch.uint8 and images.shape == (5, 32, 32, 3)
    text = wgan_cli.load(make_checkpoint(tmp_path / "t.safetensors", "text"))
    lines = text.text(4, seed=1)
    assert len(lines) == 4 and all(set(line) <= set("abc `\ufffd") and len(line) <= 8 for line in lines)
    points = wgan_cli.load(make_checkpoint(tmp_path / "toy.safetensors", "toy")).sample(3)
    assert points.shape == (3, 2) and points.dtype == torch.float32


@pytest.mark.slow
def test_image_k_is_seed_k_whatever_n_batch_size_or_order(cond):
    G = api.load(cond)
    many = G.sample(64, seed=0)
    assert torch.equal(G.sample(1, seed=5)[0], many[5])
    assert torch.equal(G.sample(seeds=[5])[0], many[5])
    assert torch.equal(G.sample(seeds="40-43,7"), many[[40, 41, 42, 43, 7]])
    in_threes = torch.cat([b.samples for b in G.batches(64, seed=0, batch_size=3)])
    assert torch.equal(in_threes, many)
    alone = torch.cat([G.sample(seeds=[k]) for k in range(64)])   # bytes, not just latents: one forward shape
    assert torch.equal(alone, many)
    z, y = G.latents(seeds=[9, 2])
    z9, y9 = api.seeded_latent(9, 16, 10)
    assert torch.equal(z[0], z9) and int(y[0]) == y9
    # seed S: images S .. S+n-1 (StyleGAN's --seeds); so seed 3 starts at image 3 of seed 0
    assert torch.equal(G.sample(4, seed=3), many[3:7])


def test_cli_seeds_are_the_same_images_with_n_1_inside_n_64_and_on_a_batch_size_change(tmp_path, cond):
    runs = {"all": ["-n", "64"], "one": ["--seeds", "17"], "few": ["-n", "20"],
            "list": ["--seeds", "17,3-4"]}
    for name, args in runs.items():
        r = sample(cond, *args, "-o", tmp_path / f"{name}.npz")
        assert r.exit_code == 0, r.output
    got = {name: np.load(tmp_path / f"{name}.npz") for name in runs}
    assert np.array_equal(got["one"]["images"][0], got["all"]["images"][17])
    assert np.array_equal(got["few"]["images"], got["all"]["images"][:20])
    assert np.array_equal(got["list"]["images"], got["all"]["images"][[17, 3, 4]])
    assert got["list"]["labels"].tolist() == got["all"]["labels"][[17, 3, 4]].tolist()
    r = sample(cond, "--seeds", "1-3", "-n", "5", "-o", tmp_path / "x.npz")
    assert r.exit_code == 2 and "-n would be ignored" in r.output
    r = sample(cond, "--seeds", "3-1", "-o", tmp_path / "x.npz")
    assert r.exit_code == 2 and "0 <= A <= B" in r.output


def test_truncation_redraws_only_the_components_beyond_t(cond):
    G = api.load(cond)
    free, y_free = G.latents(seeds=range(50))
    cut, y_cut = G.latents(seeds=range(50), truncation=0.5)
    assert float(cut.abs().max()) <= 0.5
    inside = free.abs() <= 0.5
    assert torch.equal(cut[inside], free[inside])         # kept where already within |T|
    assert not torch.equal(cut[~inside], free[~inside])   # the others are fresh draws
    assert torch.equal(y_cut, y_free)                      # the class does not depend on truncation
    # a truncated normal on [-0.5, 0.5] has variance 0.5^2 * (1 - 2 phi(.5) / (.5 (2 Phi(.5) - 1))) ~ 0.0801;
    # 800 redrawn-or-kept components at 50 x 16: the sample variance is within 25% of it with overwhelming odds
    assert abs(float(cut.var()) - 0.0801) < 0.25 * 0.0801
    with pytest.raises(UsageError, match="truncation") as e:
        G.sample(2, truncation=0.01)
    assert "--" not in e.value.message


def test_saved_latents_draw_the_same_images_again(tmp_path, cond):
    r = sample(cond, "--seeds", "0-9", "--truncation", "1.5", "--save-latents", tmp_path / "z.npz", "-o",
               tmp_path / "a.npz")
    assert r.exit_code == 0, r.output
    saved = np.load(tmp_path / "z.npz")
    assert saved["seeds"].tolist() == list(range(10)) and saved["z"].shape == (10, 16)
    assert float(np.abs(saved["z"]).max()) <= 1.5
    r = sample(cond, "--latents", tmp_path / "z.npz", "-o", tmp_path / "b.npz")
    assert r.exit_code == 0, r.output
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert np.array_equal(a["images"], b["images"]) and np.array_equal(a["labels"], saved["labels"])
    for args, words in ((["--save-latents", tmp_path / "a.npz"], "the same file"),
                        (["--save-latents", cond], "is the checkpoint"),
                        (["--latents", tmp_path / "z.npz", "--save-latents", tmp_path / "z.npz"], "is --latents")):
        before = {p: p.read_bytes() for p in (tmp_path / "a.npz", tmp_path / "z.npz", cond)}
        r = sample(cond, *args, "-o", tmp_path / "a.npz")
        assert r.exit_code == 2 and words in r.output, r.output
        assert all(p.read_bytes() == b for p, b in before.items())   # nothing overwritten
    np.save(tmp_path / "z.npy", saved["z"])   # z alone: a conditional model then needs --class
    r = sample(cond, "--latents", tmp_path / "z.npy", "-o", tmp_path / "c.npz")
    assert r.exit_code == 2 and "--class" in r.output
    np.save(tmp_path / "bad.npy", np.zeros((3, 5), np.float32))
    r = sample(cond, "--latents", tmp_path / "bad.npy", "-o", tmp_path / "c.npz")
    assert r.exit_code == 3 and "needs float (N, 16)" in r.output
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    r = sample(cond, "--latents", tmp_path / "obj.npy", "-o", tmp_path / "c.npz")
    assert r.exit_code == 3 and "cannot read latents" in r.output   # never unpickled


def test_api_errors_are_wgan_errors_without_flags(tmp_path, cond):
    plain = make_checkpoint(tmp_path / "p.safetensors", "dcgan28")
    G = api.load(plain)
    for call, words in ((lambda: G.sample(2, classes=1), "unconditional"),
                        (lambda: api.load(cond).sample(2, classes=10), "out of range"),
                        (lambda: api.load(plain, ema=True), "no EMA generator"),
                        (lambda: G.generate(torch.zeros(2, 3)), "latents must be float (N, 16)"),
                        (lambda: G.text(2), "needs a text model"),
                        (lambda: api.load(tmp_path / "missing.safetensors"), "no such checkpoint")):
        with pytest.raises((UsageError, CheckpointError)) as e:
            call()
        assert words in e.value.message and "--" not in e.value.message + (e.value.hint or "")
