"""`wgan sample`: draw from a generator checkpoint, rebuilt from the checkpoint's metadata alone."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from wgan_cli import checkpoint, models
from wgan_cli.data.images import to_uint8_nhwc
from wgan_cli.errors import CheckpointError, OutputError, UsageError

POINT_SUFFIXES = (".csv", ".npy")


def load_generator(path: str | Path, *, ema: bool = False, device="cpu", task=("toy", "image"),
                   command: str = "wgan sample") -> tuple[torch.nn.Module, dict]:
    """Rebuild G from a train-state or generator checkpoint; weights land on `device` (CPU works for any)."""
    tensors, meta = checkpoint.load(path, task=task, command=command)
    spec = {k: v for k, v in meta["model"].items() if k != "fixed_generator"}
    if meta["model"].get("fixed_generator"):
        raise CheckpointError(f"{path}: a fixed-generator (Figure 1a) run has no trained generator to sample",
                              "sample a checkpoint of a normal `wgan toy` run")
    G, _ = models.build(spec)
    weights = checkpoint.generator_tensors(tensors, ema=ema)
    if ema and not weights:
        raise CheckpointError(f"{path}: no EMA generator was kept in this run", "drop --ema, or train with --ema-decay")
    try:
        G.load_state_dict(weights)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the model in its metadata ({str(e).splitlines()[0]})",
                              "the checkpoint is damaged or from an incompatible wgan version") from None
    return G.to(device).eval(), meta


def check_output(out: Path, suffixes: tuple[str, ...], what: str) -> None:
    if out.suffix.lower() not in suffixes:
        raise UsageError(f"cannot write {what} to {out}: unknown output type {out.suffix or '(none)'}",
                         f"use one of: {', '.join(suffixes)}")
    if not out.parent.exists():
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create {out.parent}: {e.strerror}", "choose a writable -o path") from None


@torch.no_grad()
def sample_points(G, n: int, seed: int, device) -> torch.Tensor:
    gen = torch.Generator(device=device).manual_seed(seed)
    return G(torch.randn(n, G.z_dim, device=device, generator=gen)).float().cpu()


def write_points(points: torch.Tensor, out: Path) -> Path:
    arr = points.numpy()
    try:
        if out.suffix.lower() == ".npy":
            np.save(out, arr.astype(np.float32))
        else:
            np.savetxt(out, arr, delimiter=",", header="x,y", comments="", fmt="%.6f")
    except OSError as e:
        raise OutputError(f"cannot write {out}: {e.strerror}", "choose a writable -o path") from None
    return out


# ---- images ------------------------------------------------------------------------------------------------
IMAGE_SUFFIXES = (".png", ".npz")


def grid_shape(n: int, nrow: int | None = None) -> tuple[int, int]:
    """(rows, columns) of a grid of n images: `nrow` per row, or as square as possible."""
    cols = nrow or math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def write_grid(images: np.ndarray, out: str | Path, nrow: int | None = None) -> Path:
    """(N, H, W, C) uint8 -> one PNG, tiled without gaps (as tflib's save_images), unused cells black."""
    n, h, w, c = images.shape
    rows, cols = grid_shape(n, nrow)
    canvas = np.zeros((rows * h, cols * w, c), dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        canvas[r * h:(r + 1) * h, k * w:(k + 1) * w] = images[i]
    return _save_png(canvas, Path(out))


def _save_png(arr: np.ndarray, out: Path) -> Path:
    from PIL import Image

    img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        img.save(out)
    except OSError as e:
        raise OutputError(f"cannot write {out}: {e.strerror or e}", "choose a writable -o path") from None
    return out


def write_pngs(images: np.ndarray, folder: Path) -> Path:
    """One PNG per sample: 000000.png, 000001.png, ..."""
    for i, img in enumerate(images):
        _save_png(img, folder / f"{i:06d}.png")
    return folder


def write_npz(images: np.ndarray, labels: np.ndarray | None, out: Path) -> Path:
    """uint8 (N, H, W, C) under "images" (and int64 "labels" for a conditional model), for `wgan score`."""
    arrays = {"images": images} if labels is None else {"images": images, "labels": labels.astype(np.int64)}
    try:
        np.savez(out, **arrays)
    except OSError as e:
        raise OutputError(f"cannot write {out}: {e.strerror}", "choose a writable -o path") from None
    return out


@torch.no_grad()
def sample_images(G, n: int, seed: int, device, label: int | None = None,
                  interpolate: bool = False, row: int = 8) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n generator outputs (B, C, H, W) and their labels. With `interpolate`, rows of `row` images walk a
    straight line in z between two random endpoints (n is rounded up to whole rows)."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    if interpolate:
        rows = math.ceil(n / row)
        ends = torch.randn(rows, 2, G.z_dim, generator=gen)
        t = torch.linspace(0, 1, row)[None, :, None]
        z = (ends[:, :1] * (1 - t) + ends[:, 1:] * t).reshape(rows * row, G.z_dim)
    else:
        z = torch.randn(n, G.z_dim, generator=gen)
    y = None
    if G.n_classes:
        if label is not None:
            y = torch.full((len(z),), label, dtype=torch.int64)
        elif interpolate:   # one class per row
            y = torch.randint(0, G.n_classes, (len(z) // row,), generator=gen).repeat_interleave(row)
        else:
            y = torch.randint(0, G.n_classes, (len(z),), generator=gen)
    outs = []
    for i in range(0, len(z), 500):   # bounded memory for -n 50000
        zi = z[i:i + 500].to(device)
        outs.append((G(zi, y[i:i + 500].to(device)) if y is not None else G(zi)).float().cpu())
    return torch.cat(outs), y


def image_output_kind(out: Path) -> str:
    if str(out).endswith(("/", os.sep)) or out.is_dir() or out.suffix == "":
        return "dir"
    if out.suffix.lower() in IMAGE_SUFFIXES:
        return out.suffix.lower()[1:]
    raise UsageError(f"cannot write images to {out}: unknown output type {out.suffix}",
                     "use grid.png (one grid), DIR/ (one PNG per sample) or samples.npz (uint8 array)")


def sample_image_command(ckpt: Path, n: int, out: Path, seed: int, device, ema: bool = False,
                         label: int | None = None, interpolate: bool = False) -> str:
    kind = image_output_kind(out)
    G, meta = load_generator(ckpt, ema=ema, device=device, task="image")
    if label is not None:
        if not G.n_classes:
            raise UsageError(f"--class {label}: {ckpt} is an unconditional model", "drop --class")
        if not 0 <= label < G.n_classes:
            raise UsageError(f"--class {label} is out of range: the model has classes 0..{G.n_classes - 1}",
                             f"pick a class between 0 and {G.n_classes - 1}")
    if kind != "dir":
        check_output(out, IMAGE_SUFFIXES, "images")
    x, y = sample_images(G, n, seed, device, label, interpolate)
    images = to_uint8_nhwc(x, getattr(G, "output", "tanh"))
    if kind == "png":
        write_grid(images, out, nrow=8 if interpolate else None)
        return f"wrote a grid of {len(images)} samples to {out}"
    if kind == "npz":
        write_npz(images, y.numpy() if y is not None else None, out)
        return f"wrote {len(images)} samples {tuple(images.shape)} uint8 to {out}"
    write_pngs(images, out)
    return f"wrote {len(images)} PNGs to {out}"


def sample_command(ckpt: Path, n: int, out: Path | None, seed: int, device, ema: bool = False,
                   label: int | None = None, interpolate: bool = False) -> str:
    """Dispatch on the checkpoint's task; returns a one-line summary of what was written."""
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
        G, _ = load_generator(ckpt, ema=ema, device=device)
        write_points(sample_points(G, n, seed, device), out)
        return f"wrote {n} points to {out}"
    if meta["task"] == "image":
        return sample_image_command(ckpt, n, out, seed, device, ema, label, interpolate)
    raise UsageError(f"{ckpt}: sampling {meta['task']} checkpoints is not available yet", "see `wgan sample --help`")
