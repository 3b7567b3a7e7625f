"""`wgan sample`: draw from a generator checkpoint, rebuilt from the checkpoint's metadata alone.

Image outputs: a grid (.png), one PNG per sample (DIR/), a uint8 array (.npz), and with --interpolate either rows of
straight-line interpolations (.png, .npz, DIR/) or a latent walk animation (.gif, .mp4): a smooth closed loop
through random latent points (walk.py), -n frames long.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from wgan_cli import bounds, checkpoint, models, outputs, walk
from wgan_cli.data.pixels import to_uint8_nhwc
from wgan_cli.errors import CheckpointError, UsageError

POINT_SUFFIXES = (".csv", ".npy")
IMAGE_FILE_SUFFIXES = (".png", ".npz", ".gif", ".mp4")
ANIMATIONS = ("gif", "mp4")
FRAMES_PER_POINT = 16   # a latent walk's frames from one key point to the next (-n 64: a loop through 4 points)


def check_output(out: Path, suffixes: tuple[str, ...], what: str) -> None:
    if out.suffix.lower() not in suffixes:
        raise UsageError(f"cannot write {what} to {out}: unknown output type {out.suffix or '(none)'}",
                         f"use one of: {', '.join(suffixes)}")
    outputs.check_writable(out)


def image_output_kind(out: Path) -> str:
    if str(out).endswith(("/", os.sep)) or out.is_dir() or out.suffix == "":
        return "dir"
    if out.suffix.lower() in IMAGE_FILE_SUFFIXES:
        return out.suffix.lower()[1:]
    raise UsageError(f"cannot write images to {out}: unknown output type {out.suffix}",
                     "use grid.png (one grid), DIR/ (one PNG per sample), samples.npz (uint8 array), or walk.gif / "
                     "walk.mp4 with --interpolate")


def latents(G, n: int, gen: torch.Generator, label: int | None = None, interpolate: bool = False,
            row: int = 8) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The z (and labels) to draw. With `interpolate`, rows of `row` latents walk a straight line in z between
    two random endpoints (n is rounded up to whole rows), one class per row for a conditional model."""
    if not interpolate:
        z = torch.randn(n, G.z_dim, generator=gen)
    else:
        rows = math.ceil(n / row)
        ends = torch.randn(rows, 2, G.z_dim, generator=gen)
        t = torch.linspace(0, 1, row)[None, :, None]
        z = (ends[:, :1] * (1 - t) + ends[:, 1:] * t).reshape(rows * row, G.z_dim)
    y = None
    if G.n_classes:
        if label is not None:
            y = torch.full((len(z),), label, dtype=torch.int64)
        elif interpolate:
            y = torch.randint(0, G.n_classes, (len(z) // row,), generator=gen).repeat_interleave(row)
        else:
            y = torch.randint(0, G.n_classes, (len(z),), generator=gen)
    return z, y


def walk_shape(n: int) -> tuple[int, int]:
    """-n frames -> (key points, frames per point): a key point every FRAMES_PER_POINT frames, at least 2; the frame
    count is rounded up to a multiple of the key points (n <= points * per_point < n + points)."""
    points = max(2, math.ceil(n / FRAMES_PER_POINT))
    return points, math.ceil(n / points)


def walk_latents(G, n: int, gen: torch.Generator, label: int | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """The z (and labels) of a latent walk of about n frames, and its number of key points. A conditional model
    walks within one class: `label`, else one drawn after the key points."""
    points, per_point = walk_shape(n)
    z = walk.latent_loop(G.z_dim, points, per_point, gen)
    y = None
    if G.n_classes:
        cls = label if label is not None else int(torch.randint(0, G.n_classes, (1,), generator=gen))
        y = torch.full((len(z),), cls, dtype=torch.int64)
    return z, y, points


def sample_images(ckpt: Path, n: int, out: Path, seed: int, device, ema: bool = False,
                  label: int | None = None, interpolate: bool = False, fps: float = 16,
                  notes: list | None = None) -> str:
    kind = image_output_kind(out)
    if kind in ANIMATIONS and not interpolate:
        raise UsageError(f"-o {out}: an animation is a latent walk", f"add --interpolate (-n {n} frames)")
    if kind == "mp4":
        walk.find_ffmpeg()   # before any work
    G, _ = checkpoint.load_generator(ckpt, ema=ema, device=device, task="image", notes=notes)
    if label is not None:
        if not G.n_classes:
            raise UsageError(f"--class {label}: {ckpt} is an unconditional model", "drop --class")
        if not 0 <= label < G.n_classes:
            raise UsageError(f"--class {label} is out of range: the model has classes 0..{G.n_classes - 1}",
                             f"pick a class between 0 and {G.n_classes - 1}")
    if kind != "dir":
        check_output(out, IMAGE_FILE_SUFFIXES, "images")
    else:
        outputs.check_writable(out / "000000.png")
    if kind in ANIMATIONS:
        z, y, points = walk_latents(G, n, torch.Generator().manual_seed(seed), label)
        frames = to_uint8_nhwc(models.generate(G, z, y, to="cpu"), G.output)
        (walk.write_gif if kind == "gif" else walk.write_mp4)(frames, out, fps)
        return f"wrote a {len(frames)}-frame loop through {points} latent points to {out} ({fps:g} fps)"
    z, y = latents(G, n, torch.Generator().manual_seed(seed), label, interpolate)
    images = to_uint8_nhwc(models.generate(G, z, y, to="cpu"), G.output)
    if kind == "png":
        outputs.write_grid(images, out, nrow=8 if interpolate else None)
        return f"wrote a grid of {len(images)} samples to {out}"
    if kind == "npz":
        outputs.write_npz(images, y.numpy() if y is not None else None, out)
        return f"wrote {len(images)} samples {tuple(images.shape)} uint8 to {out}"
    outputs.write_pngs(images, out)
    return f"wrote {len(images)} PNGs to {out}"


def sample_command(ckpt: Path, n: int, out: Path | None, seed: int, device, ema: bool = False,
                   label: int | None = None, interpolate: bool = False, fps: float = 16,
                   notes: list | None = None) -> str:
    """Dispatch on the checkpoint's task; returns a one-line summary of what was written (notes to `notes`)."""
    bounds.check_value("-n", n, bounds.SAMPLES)
    bounds.check_value("--seed", seed, bounds.SEED)
    meta = checkpoint.read_meta(ckpt)
    if out is None:
        out = Path("samples.png" if meta["task"] == "image" else "samples.csv")
    if meta["task"] == "text":
        raise CheckpointError(f"{ckpt}: a text checkpoint", "generate text with `wgan textgen --ckpt CKPT`")
    if n < 1:
        raise UsageError(f"-n must be at least 1 (got {n})", "ask for some samples: -n 64")
    if meta["task"] == "toy":
        if label is not None or interpolate:
            raise UsageError("--class and --interpolate apply to image checkpoints", "drop them for a toy model")
        check_output(out, POINT_SUFFIXES, "points")
        G, _ = checkpoint.load_generator(ckpt, ema=ema, device=device, notes=notes)
        points, _ = models.draw(G, n, torch.Generator(device=device).manual_seed(seed), to="cpu")
        outputs.write_points(points.float().numpy(), out)
        return f"wrote {n} points to {out}"
    bounds.check_value("--fps", fps, bounds.FPS)
    return sample_images(ckpt, n, out, seed, device, ema, label, interpolate, fps, notes)
