"""The files the commands write for people and other tools: image grids, one PNG per sample, .npz arrays, toy
points (.csv / .npy), text lines. Every writer goes through files.atomic_path: a failure (a full disk, a
read-only folder) leaves no truncated file behind and the previous file, if any, intact, and is reported as an
OutputError naming the path (exit code 7).
"""

from __future__ import annotations

import io
import math
import os
import shutil
import tempfile
import zipfile
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from wgan_cli.errors import OutputError, UsageError
from wgan_cli.files import atomic_path, header_metadata, write_text

def hint_for(flag: str) -> str:
    """The hint of an output that cannot be written, naming the option that gave its path."""
    return f"choose a writable {flag} path (and check free space)"


HINT = hint_for("-o")


def existing_folder(out: Path, flag: str = "-o") -> Path:
    """The folder an output's folders would be made in: its parent, else the nearest ancestor that exists. It is
    not made now (the write makes it): a command refused later, for its inputs, leaves no empty folder behind.
    An OutputError if that ancestor is a file."""
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"cannot create {out.parent}: {folder} is a file", f"choose a writable {flag} path")
    return folder


def same_path(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file or folder (links, `..` and relative forms resolved)."""
    try:
        return os.path.samefile(a, b)
    except OSError:   # one of them does not exist (yet)
        return Path(a).resolve() == Path(b).resolve()


def refuse_input(out: str | Path, flag: str, inputs: dict[str, str | Path | None]) -> None:
    """An output that is one of the command's inputs (`inputs`: the option naming it -> its path) would destroy
    that input: a UsageError (exit code 2)."""
    for name, path in inputs.items():
        if path is not None and str(path) != "" and same_path(out, path):
            raise UsageError(f"{flag} {out} is also {name}: writing there would change that input",
                             f"give {flag} another path")


def existing_checkpoint(path: str | Path) -> dict | None:
    """The metadata of the wgan checkpoint at `path`, if that is what the file is (header only, nothing loaded)."""
    path = Path(path)
    if not path.is_file():
        return None
    meta = header_metadata(path, "wgan")
    return meta if meta is not None and meta.get("format") == "wgan-checkpoint" else None


def refuse_checkpoint(out: str | Path, flag: str, checkpoint: dict | None = None) -> None:
    """A wgan checkpoint at `out` is replaced only by a checkpoint of the same run: `checkpoint` gives what the
    new one holds (task, model spec and the `extra` values that identify the data); a checkpoint that
    --resume would accept is one of the same run. Anything else (text, statistics, samples, another model) is
    a UsageError (exit code 2): the trained weights would be lost."""
    meta = existing_checkpoint(out)
    if meta is None:
        return
    if checkpoint is not None and meta.get("task") == checkpoint["task"] \
            and meta.get("model") == checkpoint["model"] \
            and all((meta.get("extra") or {}).get(k) == v for k, v in checkpoint.get("same", {}).items()):
        return
    what = "a checkpoint of another model or data" if checkpoint is not None else "this output"
    raise UsageError(f"{flag} {out} is a wgan {meta.get('task')} checkpoint ({meta.get('kind')}, iteration "
                     f"{meta.get('step')}); {what} would replace it",
                     f"give {flag} another path (or move the checkpoint away first)")


def check_output(out: str | Path, flag: str = "-o", inputs: dict[str, str | Path | None] | None = None,
                 checkpoint: dict | None = None) -> Path:
    """Before any work is done, for every file a command writes at a path the user gave: not one of the
    command's `inputs` (option -> path), not a wgan checkpoint unless `checkpoint` says the output is one of the
    same run (refuse_checkpoint), and writable (check_writable)."""
    refuse_input(out, flag, inputs or {})
    refuse_checkpoint(out, flag, checkpoint)
    return _writable(out, flag)


def check_writable(out: str | Path, flag: str = "-o") -> Path:
    """Before any work is done: the output's folder (or the folder it would be made in) takes a new file, and the
    output is not a folder. An OutputError naming the path (and, in the hint, the option `flag`) otherwise. An existing
    wgan checkpoint is never replaced by it (refuse_checkpoint); check_output also compares the inputs."""
    refuse_checkpoint(out, flag)
    return _writable(out, flag)


def _writable(out: str | Path, flag: str) -> Path:
    out = Path(out)
    if out.is_dir():
        raise OutputError(f"cannot write {out}: it is a folder", f"give {flag} a file path")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=existing_folder(out, flag))
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputError(f"cannot write {out}: {e.strerror or e}", hint_for(flag)) from None
    return out


def grid_shape(n: int, nrow: int | None = None) -> tuple[int, int]:
    """(rows, columns) of a grid of n images: `nrow` per row, or as square as possible."""
    cols = nrow or math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def tile(images: np.ndarray, nrow: int | None = None) -> np.ndarray:
    """(N, H, W, C) uint8 -> one (rows*H, cols*W, C) canvas without gaps (as tflib's save_images); unused cells
    are black."""
    n, h, w, c = images.shape
    rows, cols = grid_shape(n, nrow)
    canvas = np.zeros((rows * h, cols * w, c), dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        canvas[r * h:(r + 1) * h, k * w:(k + 1) * w] = images[i]
    return canvas


def write_png(image: np.ndarray, out: str | Path) -> Path:
    """(H, W, C) uint8 with C in {1, 3} -> a PNG file."""
    img = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
    with atomic_path(out, HINT) as tmp:
        img.save(tmp, format="PNG")
    return Path(out)


def write_grid(images: np.ndarray, out: str | Path, nrow: int | None = None) -> Path:
    """(N, H, W, C) uint8 -> one PNG grid."""
    return write_png(tile(images, nrow), out)


def write_pngs(images: np.ndarray, folder: str | Path) -> Path:
    """One PNG per sample: 000000.png, 000001.png, ... Each file is whole or absent; a failure says how many
    were written."""
    folder = Path(folder)
    for i, img in enumerate(images):
        try:
            write_png(img, folder / f"{i:06d}.png")
        except OutputError as e:
            raise OutputError(f"{e.message} ({i} of {len(images)} PNGs written, each complete)", e.hint) from None
    return folder


def write_grid_labelled(images: np.ndarray, labels: list[str], out: str | Path, nrow: int | None = None) -> Path:
    """(N, H, W, C) uint8 -> one PNG grid with a caption strip under each image (its seed, say), in Pillow's
    built-in bitmap font: white text on black, the images themselves untouched."""
    from PIL import ImageDraw

    n, h, w, c = images.shape
    rows, cols = grid_shape(n, nrow)
    font = caption_font()
    strip = 12
    canvas = Image.new("L" if c == 1 else "RGB", (cols * w, rows * (h + strip)))
    draw = ImageDraw.Draw(canvas)
    for i in range(n):
        r, k = divmod(i, cols)
        canvas.paste(Image.fromarray(images[i, :, :, 0] if c == 1 else images[i]), (k * w, r * (h + strip)))
        draw.text((k * w + 1, r * (h + strip) + h), labels[i], fill=255 if c == 1 else (255, 255, 255), font=font)
    with atomic_path(out, HINT) as tmp:
        canvas.save(tmp, format="PNG")
    return Path(out)


def caption_font():
    """Pillow's bitmap font at 10 px (Pillow >= 10.1 sizes it), else its fixed default."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=10)
    except TypeError:   # Pillow 10.0: no size
        return ImageFont.load_default()


@dataclass(frozen=True)
class NeighbourLayout:
    """Where `write_neighbours` puts each image: row r holds sample r in column 0, then its neighbours in columns
    1..K, nearest first, each image scaled by `scale` (pixels repeated) with a caption strip under it."""

    rows: int
    cols: int            # 1 + K
    cell_h: int          # an image's height and width on the canvas (scaled)
    cell_w: int
    scale: int
    pad: int = 3         # between cells (the sample's frame is drawn in it)
    gap: int = 12        # between the sample and its neighbours
    header: int = 14     # the column titles
    strip: int = 12      # the caption under each image

    def box(self, row: int, col: int) -> tuple[int, int]:
        """(x, y) of the image's top-left pixel."""
        x = self.pad + col * (self.cell_w + self.pad) + (self.gap if col > 0 else 0)
        return x, self.header + self.pad + row * (self.cell_h + self.strip + self.pad)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the canvas."""
        return (self.pad + self.cols * (self.cell_w + self.pad) + self.gap,
                self.header + self.pad + self.rows * (self.cell_h + self.strip + self.pad))


MIN_CELL = 72   # canvas pixels per image at least: room for a caption such as "12.3 #59999"


def neighbour_layout(rows: int, k: int, h: int, w: int) -> NeighbourLayout:
    scale = max(1, math.ceil(MIN_CELL / max(h, w)))
    return NeighbourLayout(rows, 1 + k, h * scale, w * scale, scale)


def write_neighbours(samples: np.ndarray, neighbours: np.ndarray, captions: list[list[str]],
                     out: str | Path) -> NeighbourLayout:
    """samples (R, H, W, C) and their neighbours (R, K, H, W, C) uint8 -> one PNG: a row per sample, the sample
    framed in red at the left, a gap, its K neighbours nearest first; `captions[r][c]` under each image (the
    sample's index, each neighbour's distance and index), in Pillow's bitmap font. Small images are scaled up by
    repeating pixels so the captions fit; the pixels themselves are untouched."""
    from PIL import ImageDraw

    r, k = neighbours.shape[:2]
    h, w = samples.shape[1:3]
    lay = neighbour_layout(r, k, h, w)
    font = caption_font()
    canvas = Image.new("RGB", lay.size, (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    x0 = lay.box(0, 1)[0]
    draw.text((lay.pad, 1), "sample", fill=(200, 0, 0), font=font)
    titles = (f"its {k} nearest training images, nearest first (distance #index)",
              "nearest training images (distance #index)", "nearest training images", "nearest")
    room = lay.size[0] - x0
    title = next((t for t in titles if draw.textlength(t, font=font) <= room), titles[-1])   # the longest that fits
    draw.text((x0, 1), title, fill=(0, 0, 0), font=font)

    def paste(image: np.ndarray, row: int, col: int) -> None:
        big = image.repeat(lay.scale, axis=0).repeat(lay.scale, axis=1)
        tile = Image.fromarray(big[:, :, 0] if big.shape[2] == 1 else big).convert("RGB")
        x, y = lay.box(row, col)
        canvas.paste(tile, (x, y))
        draw.text((x + 1, y + lay.cell_h), captions[row][col], fill=(200, 0, 0) if col == 0 else (0, 0, 0),
                  font=font)

    for row in range(r):
        x, y = lay.box(row, 0)
        draw.rectangle((x - 2, y - 2, x + lay.cell_w + 1, y + lay.cell_h + 1), outline=(200, 0, 0), width=2)
        paste(samples[row], row, 0)
        for col in range(k):
            paste(neighbours[row, col], row, col + 1)
    with atomic_path(out, HINT) as tmp:
        canvas.save(tmp, format="PNG")
    return lay


def write_npz(images: np.ndarray, labels: np.ndarray | None, out: str | Path) -> Path:
    """uint8 (N, H, W, C) under "images" (and int64 "labels" for a conditional model), for `wgan score`."""
    arrays = {"images": images} if labels is None else {"images": images, "labels": labels.astype(np.int64)}
    with atomic_path(out, HINT) as tmp, open(tmp, "wb") as f:   # a file object: np.savez adds no suffix
        np.savez(f, **arrays)
    return Path(out)


def npy_header(dtype, shape: tuple[int, ...]) -> bytes:
    """The .npy header (format 1.0) of a C-order array of `dtype` and `shape`: what np.save writes first."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                               "fortran_order": False, "shape": tuple(int(d) for d in shape)})
    return buf.getvalue()


@contextmanager
def array_stream(out: str | Path, n: int, members: dict[str, tuple[np.dtype, tuple[int, ...]]],
                 hint: str = HINT) -> Iterator[Callable[[str, np.ndarray], None]]:
    """Write arrays of n rows chunk by chunk, so memory does not grow with n: yields `write(name, rows)`.

    `members`: name -> (dtype, shape of one row). An .npy file holds the one member; an .npz archive (as np.savez
    writes it: a zip, stored, of NAME.npy members) gets the first member streamed straight into the zip (Zip64, so
    past 4 GiB) and the others spooled to temporary files, added when it closes. Atomic, as every output; rows
    that do not add up to n (or a wrong dtype or row shape) are a programming error, and nothing is written."""
    out = Path(out)
    names = list(members)
    assert names and (out.suffix.lower() == ".npz" or len(names) == 1), (out, names)
    counts = dict.fromkeys(names, 0)

    def header(name: str) -> bytes:
        dtype, row = members[name]
        return npy_header(dtype, (n, *row))

    with atomic_path(out, hint) as tmp, open(tmp, "wb") as f:
        spools = {k: tempfile.TemporaryFile(dir=out.parent) for k in names[1:]}
        try:
            # the zip is finished (central directory written) on success; on any error the half-written
            # temporary file is dropped by atomic_path
            zf = None if out.suffix.lower() == ".npy" else zipfile.ZipFile(f, "w", zipfile.ZIP_STORED,
                                                                           allowZip64=True)
            first = f if zf is None else zf.open(names[0] + ".npy", "w", force_zip64=True)
            first.write(header(names[0]))

            def write(name: str, rows: np.ndarray) -> None:
                dtype, row = members[name]
                rows = np.ascontiguousarray(rows)
                assert rows.dtype == np.dtype(dtype) and rows.shape[1:] == tuple(row), (name, rows.dtype, rows.shape)
                (first if name == names[0] else spools[name]).write(rows.tobytes())
                counts[name] += len(rows)

            try:
                yield write
            except BaseException:
                if zf is not None:   # let the zip object go quietly (its finaliser would try to finish the file)
                    for close in (first.close, zf.close):
                        with suppress(Exception):
                            close()
                raise
            assert all(c == n for c in counts.values()), (counts, n)
            if zf is not None:
                first.close()
                for name, spool in spools.items():
                    spool.seek(0)
                    with zf.open(name + ".npy", "w", force_zip64=True) as m:
                        m.write(header(name))
                        shutil.copyfileobj(spool, m, 1 << 20)
                zf.close()
        finally:
            for spool in spools.values():
                spool.close()


@contextmanager
def point_stream(out: str | Path, n: int) -> Iterator[Callable[[np.ndarray], None]]:
    """Toy points written chunk by chunk (bounded memory): yields `write(points (B, 2))`; an .npy (float32) or a
    .csv with an x,y header, the same files write_points makes."""
    out = Path(out)
    if out.suffix.lower() == ".npy":
        with array_stream(out, n, {"points": (np.float32, (2,))}) as write:
            yield lambda rows: write("points", np.asarray(rows, dtype=np.float32))
        return
    with atomic_path(out, HINT) as tmp, open(tmp, "wb") as f:
        f.write(b"x,y\n")
        yield lambda rows: np.savetxt(f, rows, delimiter=",", fmt="%.6f")


def write_points(points: np.ndarray, out: str | Path) -> Path:
    """(N, 2) points -> .npy (float32) or .csv with an x,y header."""
    out = Path(out)
    with atomic_path(out, HINT) as tmp, open(tmp, "wb") as f:
        if out.suffix.lower() == ".npy":
            np.save(f, points.astype(np.float32))
        else:
            np.savetxt(f, points, delimiter=",", header="x,y", comments="", fmt="%.6f")
    return out


def write_lines(out: str | Path, lines: list[str], flag: str = "-o") -> Path:
    """UTF-8 text, one line per entry."""
    return write_text(out, "".join(s + "\n" for s in lines), hint_for(flag))


def json_safe(result):
    """`result` with every non-finite number replaced by None (strict JSON has no NaN or infinity), and the keys
    whose values were replaced."""
    replaced: list[str] = []

    def clean(value, key):
        if isinstance(value, float) and not math.isfinite(value):
            replaced.append(key)
            return None
        if isinstance(value, dict):
            return {k: clean(v, str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v, key) for v in value]
        return value

    return clean(result, ""), replaced
