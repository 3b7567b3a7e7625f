"""Latent walks: the loop is closed and smooth and keeps Gaussian norms; GIF and MP4 writers (atomic, looping)."""

import math
import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from wgan_cli.errors import OutputError, UsageError
from wgan_cli.walk import ease, key_latents, latent_loop, loop_through, slerp, write_gif, write_mp4

Z_DIM, POINTS, FPP = 128, 4, 16


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def test_loop_visits_the_key_latents_and_closes():
    z = latent_loop(Z_DIM, POINTS, FPP, gen=seeded())
    keys = key_latents(Z_DIM, POINTS, gen=seeded())            # the same draws
    assert z.shape == (POINTS * FPP, Z_DIM) and z.dtype == torch.float32
    for i in range(POINTS):
        torch.testing.assert_close(z[i * FPP], keys[i])
    # the frame after the last is frame 0: continuing the last segment one more frame lands on keys[0]
    t_next = ease(torch.tensor([1.0], dtype=torch.float64))
    torch.testing.assert_close(slerp(keys[-1], keys[0], t_next)[0], z[0])
    # and no jump at the seam: the wrap-around step (last frame -> frame 0) is an eased step into a key latent,
    # smaller than the typical step
    steps = (z[1:] - z[:-1]).norm(dim=1)
    assert float((z[0] - z[-1]).norm()) < float(steps.median())


def test_consecutive_frames_are_close():
    z = latent_loop(Z_DIM, POINTS, FPP, gen=seeded(1))
    steps = (torch.roll(z, -1, dims=0) - z).norm(dim=1)       # includes the wrap-around step
    key_gap = min(float((z[i * FPP] - z[((i + 1) % POINTS) * FPP]).norm()) for i in range(POINTS))
    # eased slerp: the largest step is (pi/2) x the arc / FPP ~ 0.11 x the chord for orthogonal keys
    assert float(steps.max()) < 0.15 * key_gap
    # eased: the motion slows into each key latent (the first step of a segment ~ 0.1 x its middle step; 1 unless eased)
    assert float(steps[0]) < 0.2 * float(steps[FPP // 2])


def test_slerp_keeps_gaussian_norms_where_lerp_would_not():
    z = latent_loop(Z_DIM, POINTS, FPP, gen=seeded(2))
    norms = z.norm(dim=1)
    root = math.sqrt(Z_DIM)
    assert float((norms / root - 1).abs().max()) < 0.12
    # the straight line between the same two keys sags to ~ 1/sqrt(2) of the norm at its midpoint
    keys = key_latents(Z_DIM, POINTS, gen=seeded(2))
    assert float(((keys[0] + keys[1]) / 2).norm()) < 0.8 * root


def test_slerp_of_parallel_vectors_is_linear():
    a = torch.ones(8)
    t = torch.linspace(0, 1, 5, dtype=torch.float64)
    torch.testing.assert_close(slerp(a, 3 * a, t), (1 + 2 * t.float())[:, None] * a)


def test_loop_refuses_a_single_point():
    with pytest.raises(ValueError, match="at least 2"):
        latent_loop(4, n_points=1, gen=seeded())
    with pytest.raises(ValueError, match="frames_per_point"):
        loop_through(torch.zeros(2, 4), 0)


def frames(t=12, h=20, w=30, c=3, seed=0):
    return np.random.RandomState(seed).randint(0, 256, size=(t, h, w, c), dtype=np.uint8)


def read_gif(path):
    with Image.open(path) as im:
        info = dict(im.info)
        n, size, durations, first = im.n_frames, im.size, [], None
        for i in range(n):
            im.seek(i)
            durations.append(im.info.get("duration"))
            if i == 0:
                first = np.asarray(im.convert("L"))
    return n, size, info, durations, first


def test_gif_reads_back_looping_with_every_frame(tmp_path):
    out = write_gif(frames(), tmp_path / "walk.gif", fps=10)
    n, size, info, durations, _ = read_gif(out)
    assert n == 12 and size == (30, 20)
    assert info["loop"] == 0
    assert durations == [100] * 12
    assert [p.name for p in tmp_path.iterdir()] == ["walk.gif"]     # no temp file left behind


def test_gif_grayscale_frames_are_exact(tmp_path):
    gray = frames(t=5, c=1, seed=3)
    n, size, _, _, first = read_gif(write_gif(torch.from_numpy(gray), tmp_path / "g.gif", fps=8))
    assert n == 5 and size == (30, 20)
    np.testing.assert_array_equal(first, gray[0, ..., 0])


def test_gif_refuses_bad_frames_and_keeps_the_old_file_on_failure(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_gif(np.zeros((3, 8, 8, 3), dtype=np.float32), tmp_path / "x.gif")
    old = tmp_path / "walk.gif"
    old.write_bytes(b"previous")
    with pytest.raises(ValueError, match="fps"):
        write_gif(frames(), old, fps=0)
    assert old.read_bytes() == b"previous"


# ---- mp4 -------------------------------------------------------------------------------------------------------
def test_mp4_without_ffmpeg_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))        # no ffmpeg anywhere on PATH
    with pytest.raises(UsageError) as err:
        write_mp4(frames(), tmp_path / "walk.mp4", fps=10)
    assert err.value.message == "writing .mp4 needs ffmpeg on PATH"
    assert err.value.hint == "use -o walk.gif, or install ffmpeg"
    assert not (tmp_path / "walk.mp4").exists()


def fake_ffmpeg(folder, body):
    """An `ffmpeg` on PATH that runs `body` (Python) with the argument list and stdin."""
    folder.mkdir()
    exe = folder / "ffmpeg"
    exe.write_text(f"#!{sys.executable}\nimport sys\nargs = sys.argv[1:]\ndata = sys.stdin.buffer.read()\n{body}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return folder


def test_mp4_pipes_raw_rgb_frames_and_replaces_atomically(tmp_path, monkeypatch):
    # the stand-in writes what it received to its output path: what our side of the pipe sends, checked byte by byte
    bin_dir = fake_ffmpeg(tmp_path / "bin", "open(args[-1], 'wb').write(data)")
    monkeypatch.setenv("PATH", str(bin_dir))
    gray = frames(t=4, h=6, w=10, c=1, seed=4)
    out = write_mp4(gray, tmp_path / "walk.mp4", fps=12)
    assert out.read_bytes() == np.repeat(gray, 3, axis=-1).tobytes()      # (T, H, W, 3) rgb24, frame after frame
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "walk.mp4"]


def test_mp4_failure_keeps_the_old_file(tmp_path, monkeypatch):
    bin_dir = fake_ffmpeg(tmp_path / "bin", "open(args[-1], 'wb').write(data[:10])\n"
                                            "sys.stderr.write('Unknown encoder libx264\\n')\nsys.exit(1)")
    monkeypatch.setenv("PATH", str(bin_dir))
    old = tmp_path / "walk.mp4"
    old.write_bytes(b"previous video")
    with pytest.raises(OutputError, match="Unknown encoder libx264"):
        write_mp4(frames(), old, fps=10)
    assert old.read_bytes() == b"previous video"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "walk.mp4"]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not on PATH")
def test_mp4_with_real_ffmpeg(tmp_path):
    # smooth frames (a moving colour ramp), 21 x 33: odd sizes are padded to 22 x 34 for yuv420p
    t, h, w = 8, 21, 33
    ramp = (np.arange(w)[None, :] * 6 + np.arange(h)[:, None] * 3)
    video = np.stack([np.stack([(ramp + 10 * i) % 200, ramp % 200, np.full_like(ramp, 40 + 20 * i)], -1)
                      for i in range(t)]).astype(np.uint8)
    out = write_mp4(video, tmp_path / "walk.mp4", fps=8)
    data = out.read_bytes()
    assert data[4:8] == b"ftyp"                                  # an ISO media file
    assert os.listdir(tmp_path) == ["walk.mp4"]
    # decode with the same ffmpeg: every frame is there, padded to even size, and close to what went in (lossy)
    raw = subprocess.run([shutil.which("ffmpeg"), "-loglevel", "error", "-i", str(out), "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    decoded = np.frombuffer(raw, dtype=np.uint8).reshape(t, h + 1, w + 1, 3)
    decoded = decoded[:, :h, :w].astype(float)
    # lossy, by an amount that depends on the encoder's version and settings: so no bound on the error itself, but
    # the decoded video is nearer the one that went in than that video shifted by a frame or reversed
    def err(reference):
        return np.abs(decoded - reference).mean()

    assert err(video) < min(err(np.roll(video, 1, axis=0)), err(video[::-1]))
    # frame i's blue plane is 40 + 20 i: each decoded frame is nearest its own level, i.e. within half the 20
    # between neighbours (what "the frames come back in order" means, whatever the encoder's error)
    levels = 40 + 20 * np.arange(t)
    blue = decoded[..., 2].mean(axis=(1, 2))
    assert np.abs(blue[:, None] - levels[None, :]).argmin(axis=1).tolist() == list(range(t))
