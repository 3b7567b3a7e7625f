"""`wgan sample` streams what can be streamed (PNG folders, .npz / .npy, toy points): memory does not grow with
-n. What is one picture (a grid, an animation) is refused up front when too large, with a hint."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from checkpoints import make_checkpoint
from wgan_cli import api
from wgan_cli.cli import app

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[2]


def sample(*args):
    return CliRunner().invoke(app, ["sample", *map(str, args)])


def peak_anon_mib(args) -> float:
    """Peak anonymous resident memory (RssAnon: the heap, where held samples live) of `wgan ARGS` in a fresh
    process, polled every 10 ms. Not getrusage's peak RSS: that counts the shared libraries' file-backed pages too
    (torch's alone are ~0.9 GB with a CUDA wheel), which the kernel drops and reloads under memory pressure, so it
    moves by 100 MB between two runs of the same command on a busy machine."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, "-m", "wgan_cli", *map(str, args)], env=env, stdout=subprocess.DEVNULL)
    peak = 0
    while p.poll() is None:
        try:
            with open(f"/proc/{p.pid}/status") as f:
                peak = max([peak] + [int(line.split()[1]) for line in f if line.startswith("RssAnon:")])
        except OSError:
            pass
        time.sleep(0.01)
    assert p.returncode == 0
    return peak / 1024


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads /proc (Linux)")
def test_npz_memory_does_not_grow_with_n(tmp_path):
    ckpt = make_checkpoint(tmp_path / "g.safetensors", "dcgan64")
    small = peak_anon_mib(["sample", ckpt, "-n", "1000", "-o", tmp_path / "a.npz"])
    large = peak_anon_mib(["sample", ckpt, "-n", "12000", "-o", tmp_path / "b.npz"])
    assert np.load(tmp_path / "b.npz", mmap_mode="r")["images"].shape == (12000, 64, 64, 3)
    # Holding the 11,000 extra images alone would take 11000 * 64*64*3 bytes = 135 MiB (and their float32 output
    # 4x that, as before streaming: +660 MiB). Streamed, each chunk is freed before the next; what is left is the
    # allocator's: measured +/- 20 MiB around a flat line over 30,000 samples.
    assert large - small < 60, (small, large)


def test_streamed_outputs_hold_exactly_the_samples(tmp_path):
    ckpt = make_checkpoint(tmp_path / "c.safetensors", "resnet-cond")
    G = api.load(ckpt)
    want = G.sample(7, seed=2).numpy()
    z, y = G.latents(7, seed=2)
    for name in ("s.npz", "s.npy"):
        r = sample(ckpt, "-n", 7, "--seed", 2, "-o", tmp_path / name)
        assert r.exit_code == 0, r.output
    npz, npy = np.load(tmp_path / "s.npz"), np.load(tmp_path / "s.npy")
    assert np.array_equal(npz["images"], want) and np.array_equal(npy, want)
    assert np.array_equal(npz["labels"], y.numpy())
    r = sample(ckpt, "-n", 3, "-o", tmp_path / "dir", "--save-latents", tmp_path / "z.npy")
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "dir" / "000002.png")), G.sample(3)[2].numpy())
    assert np.array_equal(np.load(tmp_path / "z.npy"), G.latents(3)[0].numpy())
    toy = make_checkpoint(tmp_path / "t.safetensors", "toy")
    for name in ("p.npy", "p.csv"):
        r = sample(toy, "-n", 9, "-o", tmp_path / name)
        assert r.exit_code == 0, r.output
    points = api.load(toy).sample(9).numpy()
    assert np.array_equal(np.load(tmp_path / "p.npy"), points)
    csv = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1)
    assert np.abs(csv - points).max() <= 5e-7   # written with 6 decimals


def test_outputs_made_whole_are_refused_up_front_when_too_large(tmp_path):
    ckpt = make_checkpoint(tmp_path / "g.safetensors", "dcgan64")
    r = sample(ckpt, "-n", 30000, "-o", tmp_path / "grid.png")   # 30,000 x 64 x 64 = 123 megapixels
    assert r.exit_code == 2 and "megapixels" in r.output and "samples.npz" in r.output
    r = sample(ckpt, "--interpolate", "-n", 30000, "-o", tmp_path / "walk.gif")
    assert r.exit_code == 2 and "GiB in memory" in r.output and "fewer frames" in r.output
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob("*.gif"))


def test_a_grid_can_show_each_seed(tmp_path):
    ckpt = make_checkpoint(tmp_path / "g.safetensors", "dcgan28")
    r = sample(ckpt, "--seeds", "3-6", "--show-seeds", "-o", tmp_path / "g.png")
    assert r.exit_code == 0, r.output
    grid = np.asarray(Image.open(tmp_path / "g.png"))
    assert grid.shape == (2 * (28 + 12), 2 * 28)           # a 12-pixel caption strip under each row
    images = api.load(ckpt).sample(seeds=range(3, 7)).numpy()[..., 0]
    assert np.array_equal(grid[:28, :28], images[0]) and np.array_equal(grid[40:68, 28:], images[3])
    assert grid[28:40].max() > 128                          # the caption is drawn (white, antialiased)
    r = sample(ckpt, "--show-seeds", "-o", tmp_path / "s.npz")
    assert r.exit_code == 2 and "grid" in r.output


def test_a_streamed_output_larger_than_the_free_space_is_refused_before_the_work(tmp_path, monkeypatch):
    import shutil

    ckpt = make_checkpoint(tmp_path / "g.safetensors", "dcgan64")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(2**30, 2**30 - 2**23, 2**23))
    r = sample(ckpt, "-n", 1000, "-o", tmp_path / "s.npz")   # 1000 x 64*64*3 bytes = 11.7 MiB; 8 MiB free
    assert r.exit_code == 7 and "GiB free" in r.output and "fewer samples" in r.output
    assert list(tmp_path.iterdir()) == [tmp_path / "g.safetensors"]

