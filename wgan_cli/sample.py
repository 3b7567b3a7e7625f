"""`wgan sample`: draw from a generator checkpoint through the Python API (api.py), the one path.

Image outputs: a grid (.png), one PNG per sample (DIR/), a uint8 array (.npz, .npy), and with --interpolate either
rows of straight-line interpolations (.png, .npz, DIR/) or a latent walk animation (.gif, .mp4): a smooth closed
loop through random latent points (walk.py), -n frames long.

Image k is drawn from its own seed (api.py): seed S + k of `-n N --seed S`, or the k-th of --seeds; so an
image does not depend on -n, the batch size or the device. PNG folders, .npz / .npy arrays and toy points are
streamed batch by batch, so memory does not grow with -n; a grid and an animation are one picture, made whole in
memory, and are refused up front past a size limit, with a hint.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wgan_cli import api, bounds, checkpoint, outputs, walk
from wgan_cli.errors import CheckpointError, DataError, OutputError, UsageError

POINT_SUFFIXES = (".csv", ".npy")
IMAGE_FILE_SUFFIXES = (".png", ".npz", ".npy", ".gif", ".mp4")
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
                     "use grid.png (one grid), DIR/ (one PNG per sample), samples.npz or .npy (uint8 array), or walk.gif / "
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


MAX_HELD_BYTES = 512 * 2**20   # outputs made whole in memory (an animation's frames, interpolation rows)


def held_check(what: str, count: int, row_bytes: int, hint: str) -> None:
    """An output that cannot be streamed: refused, before any work, when it would hold more than MAX_HELD_BYTES."""
    need = count * row_bytes
    if need > MAX_HELD_BYTES:
        raise UsageError(f"{what} of {count:,} would hold {need / 2**30:.1f} GiB in memory (the limit is "
                         f"{MAX_HELD_BYTES / 2**20:.0f} MiB)", hint)


def grid_check(n: int, size: int, nrow: int | None) -> None:
    """A grid PNG is one picture: refused past Pillow's decompression-bomb limit, which is also what readers
    (Pillow, `wgan report`) refuse to open."""
    from PIL import Image

    rows, cols = outputs.grid_shape(n, nrow)
    pixels = rows * cols * size * size
    if pixels > Image.MAX_IMAGE_PIXELS:
        raise UsageError(f"a grid of {n:,} images of {size}x{size} is {pixels / 1e6:.0f} megapixels, more than "
                         f"image readers open ({Image.MAX_IMAGE_PIXELS / 1e6:.0f})",
                         "write DIR/ (one PNG per sample) or samples.npz, which stream any number")


def space_check(folder: Path, need: int) -> None:
    """A streamed output larger than the free space of its file system is refused before the work, not after."""
    import shutil

    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if need > free:
        raise OutputError(f"the samples take {need / 2**30:.1f} GiB, and {folder} has {free / 2**30:.1f} GiB free",
                          "ask for fewer samples (-n), or write to a larger disk")


def refuse_overlap(out: Path, save_latents: Path | None, ckpt: Path, latents_file: Path | None) -> None:
    """An output that is one of the inputs, or both outputs the same file: refused before anything is written."""
    def same(a: Path | None, b: Path | None) -> bool:
        return a is not None and b is not None and os.path.abspath(a) == os.path.abspath(b)

    for flag, path in (("-o", out), ("--save-latents", save_latents)):
        for name, given in (("the checkpoint", ckpt), ("--latents", latents_file)):
            if same(path, given):
                raise UsageError(f"{flag} {path} is {name}: writing it would destroy an input",
                                 f"give {flag} another path")
    if same(out, save_latents):
        raise UsageError(f"-o and --save-latents are the same file ({out})", "give --save-latents another path")


@dataclass(frozen=True)
class Draw:
    """What to draw: n from seed (seeds S + k), explicit seeds, or given latents (and their classes)."""
    n: int
    seed: int = 0
    seeds: list | None = None                 # api.parse_seeds ranges
    z: np.ndarray | None = None               # given latents (N, z_dim)
    z_classes: np.ndarray | None = None       # their classes, from the latents file
    truncation: float | None = None
    batch_size: int = api.BATCH

    def batches(self, G: api.Generator, label: int | None):
        if self.z is not None:
            classes = label if label is not None else self.z_classes
            return G.batches(z=self.z, classes=classes, batch_size=self.batch_size)
        if self.seeds is not None:
            return G.batches(seeds=self.seeds, classes=label, truncation=self.truncation, batch_size=self.batch_size)
        return G.batches(self.n, self.seed, classes=label, truncation=self.truncation, batch_size=self.batch_size)


def read_latents(path: Path, z_dim: int, n_classes: int) -> tuple[np.ndarray, np.ndarray | None]:
    """--latents FILE: (N, z_dim) float latents from an .npy, or an .npz with "z" (and "labels" for a
    conditional model), as --save-latents writes them. Never unpickled; an .npy is memory-mapped."""
    hint = "give an .npy of float (N, z_dim) latents, or an .npz written by --save-latents"
    if path.suffix.lower() not in (".npy", ".npz"):
        raise UsageError(f"--latents {path}: unknown type {path.suffix or '(none)'}", hint)
    try:
        if path.suffix.lower() == ".npy":
            z, labels = np.load(path, mmap_mode="r", allow_pickle=False), None
        else:
            with np.load(path, allow_pickle=False) as f:
                if "z" not in f.files:
                    raise DataError(f"{path}: no array 'z' in the archive (it has {', '.join(f.files) or 'none'})",
                                    hint)
                z = f["z"]
                labels = f["labels"] if "labels" in f.files else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: cannot read latents ({str(e).splitlines()[0] if str(e) else type(e).__name__})",
                        hint) from None
    if z.ndim != 2 or z.shape[1] != z_dim or z.dtype.kind != "f" or len(z) == 0:
        raise DataError(f"{path}: latents are {z.dtype} {tuple(z.shape)}, the model needs float (N, {z_dim})", hint)
    if labels is not None and n_classes:
        if labels.shape != (len(z),) or labels.dtype.kind not in "iu":
            raise DataError(f"{path}: labels are {labels.dtype} {tuple(labels.shape)}, not {len(z)} integers", hint)
    return z, (labels if n_classes else None)


class LatentLog:
    """--save-latents FILE: the latents used (and their seeds and classes), streamed as they are drawn: an .npy of
    z alone, or an .npz of z, seeds (uint64, when drawn from seeds) and labels (a conditional model)."""

    def __init__(self, out: Path | None, n: int, z_dim: int, seeded: bool, conditional: bool):
        self.out = out
        members = {"z": (np.float32, (z_dim,))}
        if out is not None and out.suffix.lower() == ".npz":
            if seeded:
                members["seeds"] = (np.uint64, ())
            if conditional:
                members["labels"] = (np.int64, ())
        self.members, self.n = members, n

    def __enter__(self):
        self._cm = outputs.array_stream(self.out, self.n, self.members, outputs.hint_for("--save-latents")) \
            if self.out is not None else None
        self.write = self._cm.__enter__() if self._cm is not None else None
        return self

    def add(self, batch: api.Batch) -> None:
        if self.write is None:
            return
        self.write("z", batch.z.float().numpy())
        if "seeds" in self.members:
            self.write("seeds", np.array(batch.seeds, dtype=np.uint64))
        if "labels" in self.members:
            self.write("labels", batch.classes.numpy().astype(np.int64))

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc) if self._cm is not None else False


def sample_images(ckpt: Path, n: int, out: Path, seed: int, device, ema: bool = False,
                  label: int | None = None, interpolate: bool = False, fps: float = 16,
                  notes: list | None = None, draw: Draw | None = None, save_latents: Path | None = None,
                  show_seeds: bool = False) -> str:
    draw = draw or Draw(n, seed)
    kind = image_output_kind(out)
    if kind in ANIMATIONS and not interpolate:
        raise UsageError(f"-o {out}: an animation is a latent walk", f"add --interpolate (-n {n} frames)")
    if kind == "mp4":
        walk.find_ffmpeg()   # before any work
    G = api.load(ckpt, ema=ema, device=device, notes=notes)
    spec = G.spec
    if label is not None:
        if not spec.n_classes:
            raise UsageError(f"--class {label}: {ckpt} is an unconditional model", "drop --class")
        if not 0 <= label < spec.n_classes:
            raise UsageError(f"--class {label} is out of range: the model has classes 0..{spec.n_classes - 1}",
                             f"pick a class between 0 and {spec.n_classes - 1}")
    if draw.z is not None and spec.n_classes and label is None and draw.z_classes is None:
        raise UsageError("the latents file holds no labels and the model is conditional",
                         f"add --class (0..{spec.n_classes - 1}), or save latents as .npz with --save-latents")
    if interpolate and (draw.seeds is not None or draw.z is not None or draw.truncation is not None
                        or save_latents is not None):
        raise UsageError("--interpolate draws its own latent path; it takes no --seeds, --latents, --truncation "
                         "or --save-latents", "drop them, or drop --interpolate")
    if show_seeds and (kind != "png" or interpolate):
        raise UsageError("--show-seeds labels the images of a grid", "write a grid: -o grid.png")
    image_bytes = spec.size * spec.size * spec.channels
    if kind != "dir":
        check_output(out, IMAGE_FILE_SUFFIXES, "images")
    else:
        outputs.check_writable(out / "000000.png")
    if save_latents is not None:
        check_output(save_latents, (".npy", ".npz"), "latents")
    if kind in ANIMATIONS:
        points, per_point = walk_shape(n)
        held_check("a latent walk", points * per_point, 2 * image_bytes + 8 * spec.z_dim,
                   "ask for fewer frames (-n), or write rows of interpolations to DIR/ or .npz")
        z, y, points = walk_latents(G.module, n, torch.Generator().manual_seed(seed), label)
        frames = G.images(z, y).numpy()
        (walk.write_gif if kind == "gif" else walk.write_mp4)(frames, out, fps)
        return f"wrote a {len(frames)}-frame loop through {points} latent points to {out} ({fps:g} fps)"
    if interpolate:
        rows = math.ceil(n / 8) * 8
        held_check("interpolation rows", rows, 2 * image_bytes + 4 * spec.z_dim,
                   "ask for fewer samples (-n), or drop --interpolate to stream any number")
        if kind == "png":
            grid_check(rows, spec.size, 8)
        z, y = latents(G.module, n, torch.Generator().manual_seed(seed), label, interpolate)
        draw = Draw(len(z), z=z.numpy(), z_classes=None if y is None else y.numpy(), batch_size=draw.batch_size)
        label = None
    total = draw.n
    if kind == "png":
        grid_check(total, spec.size, 8 if interpolate else None)
    if kind != "png":
        space_check(out if kind == "dir" else out.parent, total * image_bytes)
    seeded = draw.z is None
    log = LatentLog(save_latents, total, spec.z_dim, seeded, bool(spec.n_classes))
    with log:
        if kind == "png":
            batches, seeds = [], []
            for b in draw.batches(G, label):
                log.add(b)
                batches.append(b.samples.numpy())
                seeds += b.seeds or []
            images = np.concatenate(batches)
            if show_seeds:
                outputs.write_grid_labelled(images, [str(s) for s in seeds], out)
            else:
                outputs.write_grid(images, out, nrow=8 if interpolate else None)
            result = f"wrote a grid of {len(images)} samples to {out}"
        elif kind in ("npz", "npy"):
            members = {"images": (np.uint8, (spec.size, spec.size, spec.channels))}
            if kind == "npz" and spec.n_classes:
                members["labels"] = (np.int64, ())
            with outputs.array_stream(out, total, members) as write:
                for b in draw.batches(G, label):
                    log.add(b)
                    write("images", b.samples.numpy())
                    if "labels" in members:
                        write("labels", b.classes.numpy().astype(np.int64))
            result = f"wrote {total} samples {(total, spec.size, spec.size, spec.channels)} uint8 to {out}"
        else:
            written = 0
            for b in draw.batches(G, label):
                log.add(b)
                for k, img in enumerate(b.samples.numpy()):
                    name = f"seed{b.seeds[k]:06d}.png" if draw.seeds is not None else f"{written:06d}.png"
                    try:
                        outputs.write_png(img, out / name)
                    except OutputError as e:
                        raise OutputError(f"{e.message} ({written} of {total} PNGs written, each complete)",
                                          e.hint) from None
                    written += 1
            result = f"wrote {written} PNGs to {out}"
    if save_latents is not None:
        result += f"; latents to {save_latents}"
    return result


def sample_command(ckpt: Path, n: int, out: Path | None, seed: int, device, ema: bool = False,
                   label: int | None = None, interpolate: bool = False, fps: float = 16,
                   notes: list | None = None, seeds: str | None = None, latents_file: Path | None = None,
                   save_latents: Path | None = None, truncation: float | None = None,
                   show_seeds: bool = False, batch_size: int | None = None) -> str:
    """Dispatch on the checkpoint's task; returns a one-line summary of what was written (notes to `notes`)."""
    bounds.check_value("-n", n, bounds.SAMPLES)
    bounds.check_value("--seed", seed, bounds.SEED)
    bounds.check_value("--truncation", truncation, bounds.TRUNCATION)
    bounds.check_value("batch_size", batch_size, bounds.BATCH)
    if seeds is not None and latents_file is not None:
        raise UsageError("--seeds and --latents both say what to draw", "give one of them")
    if truncation is not None and latents_file is not None:
        raise UsageError("--truncation applies to drawn latents, not to given ones (--latents)",
                         "drop --truncation, or truncate the latents in the file")
    parsed = api.parse_seeds(seeds) if seeds is not None else None
    if parsed is not None:
        count = sum(len(r) for r in parsed)
        if count > bounds.SAMPLES.hi:
            raise UsageError(f"--seeds {seeds}: {count:,} seeds, more than {bounds.SAMPLES.hi:,}",
                             "ask for fewer seeds")
        n = count
    meta = checkpoint.read_meta(ckpt)
    if out is None:
        out = Path("samples.png" if meta["task"] == "image" else "samples.csv")
    refuse_overlap(out, save_latents, ckpt, latents_file)
    if meta["task"] == "text":
        raise CheckpointError(f"{ckpt}: a text checkpoint", "generate text with `wgan textgen --ckpt CKPT`")
    if n < 1:
        raise UsageError(f"-n must be at least 1 (got {n})", "ask for some samples: -n 64")
    z = z_classes = None
    if latents_file is not None:
        z_dim = meta["model"].get("z_dim")
        if z_dim is None:   # an architecture whose z_dim is its builder's default
            z_dim = api.load(ckpt, device="cpu").spec.z_dim
        z, z_classes = read_latents(latents_file, z_dim, meta["model"].get("n_classes", 0) or 0)
        n = len(z)
    draw = Draw(n, seed, parsed, z, z_classes, truncation, batch_size or api.BATCH)
    if meta["task"] == "toy":
        if label is not None or interpolate or show_seeds:
            raise UsageError("--class, --interpolate and --show-seeds apply to image checkpoints",
                             "drop them for a toy model")
        check_output(out, POINT_SUFFIXES, "points")
        if save_latents is not None:
            check_output(save_latents, (".npy", ".npz"), "latents")
        G = api.load(ckpt, ema=ema, device=device, notes=notes)
        with LatentLog(save_latents, n, G.spec.z_dim, z is None, False) as log:
            with outputs.point_stream(out, n) as write:
                for b in draw.batches(G, None):
                    log.add(b)
                    write(b.samples.numpy())
        return f"wrote {n} points to {out}" + (f"; latents to {save_latents}" if save_latents else "")
    bounds.check_value("--fps", fps, bounds.FPS)
    return sample_images(ckpt, n, out, seed, device, ema, label, interpolate, fps, notes, draw, save_latents,
                         show_seeds)
