"""`wgan sample` on image checkpoints writes exactly what it says."""

import numpy as np
import pytest
from PIL import Image
from checkpoints import save_generator
from typer.testing import CliRunner

from wgan_cli.cli import app

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")


def make_ckpt(path, spec, ema=False, kind="generator", task="image"):
    return save_generator(path, spec, ema=ema, kind=kind, task=task)


MNIST = dict(arch="dcgan", dim=4, size=28, channels=1, z_dim=128, critic_norm="none", variant="default")
COND = dict(arch="resnet", dim=8, size=32, channels=3, z_dim=128, critic_norm="none", n_classes=10)


def test_grid_png_size(tmp_path):
    ckpt = make_ckpt(tmp_path / "g.safetensors", MNIST)
    r = runner.invoke(app, ["sample", str(ckpt), "-n", "10", "-o", str(tmp_path / "grid.png")])
    assert r.exit_code == 0, r.output
    img = Image.open(tmp_path / "grid.png")
    assert img.size == (4 * 28, 3 * 28) and img.mode == "L"   # 10 samples: 4 columns, 3 rows


def test_default_output_is_a_grid(tmp_path, monkeypatch):
    ckpt = make_ckpt(tmp_path / "g.safetensors", MNIST)
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["sample", str(ckpt), "-n", "4"])
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "samples.png").size == (56, 56)


def test_one_png_per_sample(tmp_path):
    ckpt = make_ckpt(tmp_path / "g.safetensors", MNIST)
    r = runner.invoke(app, ["sample", str(ckpt), "-n", "5", "-o", str(tmp_path / "out") + "/"])
    assert r.exit_code == 0, r.output
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == [f"{i:06d}.png" for i in range(5)]
    assert Image.open(tmp_path / "out" / files[0]).size == (28, 28)


def test_npz_shape_dtype_and_seed(tmp_path):
    ckpt = make_ckpt(tmp_path / "g.safetensors", MNIST)
    for name, seed in (("a.npz", "1"), ("b.npz", "1"), ("c.npz", "2")):
        r = runner.invoke(app, ["sample", str(ckpt), "-n", "7", "-o", str(tmp_path / name), "--seed", seed])
        assert r.exit_code == 0, r.output
    a, b, c = (np.load(tmp_path / n) for n in ("a.npz", "b.npz", "c.npz"))
    assert a["images"].shape == (7, 28, 28, 1) and a["images"].dtype == np.uint8
    assert "labels" not in a
    assert np.array_equal(a["images"], b["images"]) and not np.array_equal(a["images"], c["images"])


def test_conditional_labels_class_and_interpolation(tmp_path):
    ckpt = make_ckpt(tmp_path / "c.safetensors", COND)
    r = runner.invoke(app, ["sample", str(ckpt), "-n", "6", "-o", str(tmp_path / "s.npz"), "--class", "3"])
    assert r.exit_code == 0, r.output
    out = np.load(tmp_path / "s.npz")
    assert out["images"].shape == (6, 32, 32, 3) and out["labels"].tolist() == [3] * 6
    r = runner.invoke(app, ["sample", str(ckpt), "-n", "16", "-o", str(tmp_path / "i.png"), "--interpolate"])
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "i.png").size == (8 * 32, 2 * 32)   # 2 rows of 8 steps
    r = runner.invoke(app, ["sample", str(ckpt), "-n", "2", "-o", str(tmp_path / "x.png"), "--class", "10"])
    assert r.exit_code == 2 and "out of range" in r.output


def test_ema_generator_used_when_asked(tmp_path):
    ckpt = make_ckpt(tmp_path / "e.safetensors", MNIST, ema=True)   # EMA weights all zero: sigmoid(0) -> 127
    r = runner.invoke(app, ["sample", str(ckpt), "-n", "2", "-o", str(tmp_path / "e.npz"), "--ema"])
    assert r.exit_code == 0, r.output
    assert (np.load(tmp_path / "e.npz")["images"] == int(0.5 * 255.99)).all()
    plain = make_ckpt(tmp_path / "p.safetensors", MNIST)
    r = runner.invoke(app, ["sample", str(plain), "-n", "2", "-o", str(tmp_path / "p.npz"), "--ema"])
    assert r.exit_code == 4 and "no EMA generator" in r.output


@pytest.mark.parametrize("args,code,words", [
    (["-o", "x.csv"], 2, "unknown output type"),
    (["--class", "1", "-o", "x.png"], 2, "unconditional"),
])
def test_bad_sample_requests(tmp_path, args, code, words):
    ckpt = make_ckpt(tmp_path / "g.safetensors", MNIST)
    args = [a if not a.startswith("x.") else str(tmp_path / a) for a in args]
    r = runner.invoke(app, ["sample", str(ckpt), "-n", "2", *args])
    assert r.exit_code == code and words in r.output, r.output


def test_wrong_checkpoints_refused(tmp_path):
    pickle_file = tmp_path / "model.pt"
    pickle_file.write_bytes(b"not opened")
    r = runner.invoke(app, ["sample", str(pickle_file), "-o", str(tmp_path / "g.png")])
    assert r.exit_code == 4 and "pickle" in r.output
    spec = dict(arch="text-resnet", vocab_size=4, seq_len=4, dim=2, z_dim=3, n_blocks=1)
    text = save_generator(tmp_path / "t.safetensors", spec)
    r = runner.invoke(app, ["sample", str(text), "-o", str(tmp_path / "g.png")])
    assert r.exit_code == 4 and "textgen" in r.output
