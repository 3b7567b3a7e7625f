"""Latent walks as animations: a smooth closed loop through random latents, written as a GIF or an MP4.

    z = latent_loop(G.z_dim, n_points=4, frames_per_point=16, gen=torch.Generator().manual_seed(0))   # (64, z_dim)
    frames = to_uint8_nhwc(G(z))                               # data.images: (64, H, W, C) uint8
    write_gif(frames, "walk.gif", fps=16)

The loop visits n_points Gaussian latents in turn and returns to the first, so the animation repeats without a
jump. Between two key latents it follows the great circle (spherical interpolation): a Gaussian latent's norm
concentrates near sqrt(z_dim), and a straight line between two nearly orthogonal latents would cut through the
low-norm interior (norm ~ sqrt(z_dim / 2) at the midpoint) that the generator rarely saw in training. The
interpolation parameter is eased (cosine), so the motion slows into each key latent and out of it instead of
turning there abruptly.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from wgan_cli import outputs
from wgan_cli.errors import OutputError, UsageError
from wgan_cli.files import atomic_path


# ---- the latent path ------------------------------------------------------------------------------------------
def ease(t: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [0, 1], zero slope at both ends: (1 - cos(pi t)) / 2."""
    return (1 - torch.cos(math.pi * t)) / 2


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation from a (D,) to b (D,) at t (T,) -> (T, D) in a's dtype; linear when a, b are
    (nearly) parallel, where the great circle is undefined and the two paths coincide anyway."""
    a64, b64, t = a.double(), b.double(), t.double()[:, None]
    cos = (a64 @ b64 / (a64.norm() * b64.norm()).clamp_min(1e-12)).clamp(-1, 1)
    omega = torch.arccos(cos)
    if float(torch.sin(omega)) < 1e-6:
        out = (1 - t) * a64 + t * b64
    else:
        out = (torch.sin((1 - t) * omega) * a64 + torch.sin(t * omega) * b64) / torch.sin(omega)
    return out.to(a.dtype)


def key_latents(z_dim: int, n_points: int = 4, gen: torch.Generator | None = None) -> torch.Tensor:
    """(n_points, z_dim) standard Gaussian latents, drawn from `gen` (torch's global generator when None)."""
    if n_points < 2:
        raise ValueError(f"a loop needs at least 2 key latents, got {n_points}")
    return torch.randn(n_points, z_dim, generator=gen)


def loop_through(keys: torch.Tensor, frames_per_point: int = 16) -> torch.Tensor:
    """(P, D) key latents -> (P * frames_per_point, D): frame i * frames_per_point is keys[i]; the last segment
    heads back to keys[0] without reaching it, so frame 0 is the frame after the last."""
    if frames_per_point < 1:
        raise ValueError(f"frames_per_point must be at least 1, got {frames_per_point}")
    t = ease(torch.arange(frames_per_point, dtype=torch.float64) / frames_per_point)   # [0, 1), eased
    return torch.cat([slerp(keys[i], keys[(i + 1) % len(keys)], t) for i in range(len(keys))])


def latent_loop(z_dim: int, n_points: int = 4, frames_per_point: int = 16,
                gen: torch.Generator | None = None) -> torch.Tensor:
    """(n_points * frames_per_point, z_dim) float32: a closed, smooth loop through n_points random latents."""
    return loop_through(key_latents(z_dim, n_points, gen), frames_per_point)


# ---- writers --------------------------------------------------------------------------------------------------
def _frames_array(frames) -> np.ndarray:
    """uint8 (T, H, W, C), C in {1, 3}, as a numpy array (a tensor is moved to the CPU)."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] not in (1, 3) or len(frames) == 0:
        raise ValueError(f"frames must be uint8 (T, H, W, C) with C in (1, 3) and T >= 1, got {frames.dtype} "
                         f"{frames.shape}")
    return frames


def write_gif(frames, path: str | Path, fps: float = 16) -> Path:
    """uint8 (T, H, W, C) -> an endlessly looping GIF (loop=0), written atomically.

    GIF stores frame times in hundredths of a second, so 1000 / fps ms is rounded to 10 ms (16 fps plays at ~16.7).
    RGB frames are reduced to a 256-colour palette per frame (GIF's limit); grayscale frames are exact. PIL merges
    identical consecutive frames into one frame shown for their total time, so the timing is kept.
    """
    frames = _frames_array(frames)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    images = [Image.fromarray(f[..., 0] if f.shape[-1] == 1 else f) for f in frames]
    path = Path(path)
    with atomic_path(path, outputs.HINT) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=1000 / fps, loop=0)
    return path


FFMPEG_HINT = "use -o walk.gif, or install ffmpeg"


def find_ffmpeg() -> str:
    """The ffmpeg on PATH; UsageError without one (callers check before the frames are made)."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise UsageError("writing .mp4 needs ffmpeg on PATH", FFMPEG_HINT)
    return exe


def write_mp4(frames, path: str | Path, fps: float = 16) -> Path:
    """uint8 (T, H, W, C) -> an H.264 (or ffmpeg's default mp4 codec) video, written atomically.

    Raw RGB frames go to an `ffmpeg` found on PATH through a pipe; odd sizes are padded by one pixel (yuv420p needs
    even width and height). Without ffmpeg: UsageError.
    """
    exe = find_ffmpeg()
    frames = _frames_array(frames)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)                                  # gray -> rgb24
    t, h, w, _ = frames.shape
    path = Path(path)
    with atomic_path(path, outputs.HINT) as tmp:
        cmd = [exe, "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", f"{fps:g}", "-i", "-",
               "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p", "-movflags", "+faststart",
               "-f", "mp4", str(tmp)]
        proc = subprocess.run(cmd, input=np.ascontiguousarray(frames).tobytes(), capture_output=True)
        if proc.returncode != 0:
            lines = proc.stderr.decode(errors="replace").strip().splitlines()
            raise OutputError(f"ffmpeg could not write {path}: {lines[-1] if lines else f'exit {proc.returncode}'}",
                              FFMPEG_HINT)
    return path
