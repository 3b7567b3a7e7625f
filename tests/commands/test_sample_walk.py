"""`wgan sample CKPT --interpolate -o walk.gif`: a closed latent loop written as an animation, frame for frame."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence
from checkpoints import save_generator
from typer.testing import CliRunner

from wgan_cli import checkpoint, models
from wgan_cli.cli import app
from wgan_cli.data.pixels import to_uint8_nhwc
from wgan_cli.sample import walk_latents, walk_shape
from wgan_cli.walk import latent_loop

pytestmark = pytest.mark.usefixtures("one_thread")

MNIST = dict(arch="dcgan", dim=4, size=28, channels=1, z_dim=128, critic_norm="none", variant="default")
COND = dict(arch="resnet", dim=8, size=32, channels=3, z_dim=128, critic_norm="none", n_classes=10)


def make_ckpt(path, spec):
    return save_generator(path, spec)


def sample(*args):
    return CliRunner().invoke(app, ["sample", *map(str, args)])


def gif_frames(path) -> tuple[np.ndarray, Image.Image]:
    """Every frame as shown: PIL merges equal consecutive frames into one of their summed duration, so a frame
    of k x 100 ms (10 fps) stands for k frames."""
    im = Image.open(path)
    shown = []
    for frame in ImageSequence.Iterator(im):
        repeats, rest = divmod(frame.info["duration"], 100)
        assert rest == 0, frame.info["duration"]
        shown += [np.asarray(frame.convert("L"))] * repeats
    return np.stack(shown), im


def test_walk_shape_maps_n_to_key_points_and_frames():
    assert walk_shape(64) == (4, 16)
    assert walk_shape(10) == (2, 5)                        # at least two key points
    assert walk_shape(100) == (7, 15)                      # 105 frames: n rounded up to whole segments
    for n in range(1, 200):
        points, per_point = walk_shape(n)
        assert points >= 2 and n <= points * per_point < n + points


def test_a_gif_is_the_loop_frame_for_frame(tmp_path):
    ckpt = make_ckpt(tmp_path / "g.safetensors", MNIST)
    out = tmp_path / "walk.gif"
    r = sample(ckpt, "--interpolate", "-n", "32", "-o", out, "--seed", "3", "--fps", "10")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == f"wrote a 32-frame loop through 2 latent points to {out} (10 fps)"
    frames, im = gif_frames(out)
    assert im.size == (28, 28) and im.info["loop"] == 0          # loops for ever
    assert frames.shape == (32, 28, 28)
    # exactly the generator's images along walk.latent_loop from the seed (grayscale GIF frames are lossless)
    G, _ = checkpoint.load_generator(ckpt)
    z = latent_loop(128, 2, 16, torch.Generator().manual_seed(3))
    expected = to_uint8_nhwc(models.generate(G, z, to="cpu"), G.pixel_range)[..., 0]
    np.testing.assert_array_equal(frames, expected)
    # a closed loop: from the last frame back to the first is a step like any other, not a jump
    steps = np.abs(np.diff(frames.astype(np.int16), axis=0, append=frames[:1])).mean(axis=(1, 2))
    assert steps[-1] <= steps[:-1].max()
    assert np.abs(frames[16].astype(np.int16) - frames[0]).mean() > 3 * steps.max()   # the walk goes somewhere


def test_a_conditional_walk_stays_in_one_class_and_rgb_gifs_have_the_frames(tmp_path):
    ckpt = make_ckpt(tmp_path / "c.safetensors", COND)
    out = tmp_path / "cats.gif"
    r = sample(ckpt, "--interpolate", "-n", "10", "-o", out, "--class", "3", "--fps", "10")
    assert r.exit_code == 0, r.output
    im = Image.open(out)
    assert im.size == (32, 32)
    assert sum(f.info["duration"] for f in ImageSequence.Iterator(im)) == 10 * 100
    G, _ = checkpoint.load_generator(ckpt)
    _, y, points = walk_latents(G, 10, torch.Generator().manual_seed(0), label=3)
    assert points == 2 and y.tolist() == [3] * 10
    _, y, _ = walk_latents(G, 10, torch.Generator().manual_seed(0))
    assert len(set(y.tolist())) == 1                             # one random class for the whole walk


def test_animation_requests_that_cannot_be_met(tmp_path, monkeypatch):
    ckpt = make_ckpt(tmp_path / "g.safetensors", MNIST)
    r = sample(ckpt, "-n", "8", "-o", tmp_path / "walk.gif")
    assert r.exit_code == 2 and "add --interpolate" in r.stderr, r.output
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))        # no ffmpeg on PATH
    r = sample(ckpt, "--interpolate", "-n", "8", "-o", tmp_path / "walk.mp4")
    assert r.exit_code == 2
    assert r.stderr.splitlines() == ["error: writing .mp4 needs ffmpeg on PATH",
                                     "hint: use -o walk.gif, or install ffmpeg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.safetensors"]
    r = sample(ckpt, "--interpolate", "-n", "8", "-o", tmp_path / "walk.gif", "--fps", "0")
    assert r.exit_code == 2
    # straight-line rows into a grid keep working
    r = sample(ckpt, "--interpolate", "-n", "16", "-o", tmp_path / "rows.png")
    assert r.exit_code == 0 and Image.open(tmp_path / "rows.png").size == (8 * 28, 2 * 28)
