"""Prepared image sets: every file decoded once (data/decode.py) into one uint8 array that training reads at
memory speed, made by `wgan prepare` or automatically, into a cache, for `--dataset folder:PATH`, celeba and
lsun-bedroom.

A prepared set is a folder:

    images.npy      uint8 (N, H, W, C), C = 1 when every source image was grayscale, else 3
    labels.npy      int64 (N,), one class per top-level subfolder (only when the source has classes)
    manifest.json   format, source, count, size, channels, fit, filter, background, classes, what was skipped
                    and why, and a SHA-256 digest of the pixels and labels
    sources.json    [name, bytes, mtime_ns] of every source file (what the cache compares to notice a change)

Why .npy: numpy opens it with `np.load(mmap_mode="r", allow_pickle=False)`, which cannot run code and maps the
file without reading it, so any row is one slice away (a DataLoader worker reads a batch of rows; a set that fits
the memory budget is copied to the device in one go). A zip of PNGs (StyleGAN's format) would decode every image
again at every draw, which is what preparing is meant to stop; safetensors maps as well but has to know every
tensor before writing, where an .npy can be written row by row as the workers decode (its header is rewritten
with the final count at the end).

The cache lives in `$WGAN_CACHE_DIR/prepared` (default ~/.cache/wgan/prepared): one folder per source and
decoding options; its key is the list of source files with their sizes and modification times. A changed source
is prepared again (and the caller says so). Remove the folder to clear the cache.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from wgan_cli.data.decode import Decoding, Skipped, decode
from wgan_cli.data.formats import IMAGE_SUFFIXES, read_file
from wgan_cli.errors import DataError, UsageError
from wgan_cli.files import cache_dir

FORMAT, VERSION = "wgan-prepared", 1
HEADER_BYTES = 128   # the .npy header, padded so that it can be rewritten in place with the final count
FIRST_FEW = 5        # skipped files named in a summary line

Progress = Callable[[int, int, float], None]   # (done, total, seconds since the start)


@dataclass
class Source:
    """What to prepare: `items` are what `read` takes (paths, LMDB keys), `names` how each is called in messages;
    `entries` identify the source ([name, bytes, mtime_ns] per file) for the cache."""

    name: str
    items: list
    names: list[str]
    labels: list[int] | None = None
    classes: list[str] = field(default_factory=list)
    entries: list = field(default_factory=list)
    problems: list = field(default_factory=list)   # [name, reason, detail] met while listing
    read: Callable[..., bytes] = read_file
    root: str = ""


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, which a container or `taskset` can narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:   # not Linux
        return max(1, os.cpu_count() or 1)


# ---- listing a folder ------------------------------------------------------------------------------------------


def list_folder(folder: Path) -> Source:
    """Every image file under `folder` (recursively, following links once; sorted by relative path); labels from
    the top-level subfolders when every image sits in one and there are at least two. What cannot be listed or
    is not a regular file (a FIFO, a link loop) is kept as a problem with its reason, never dropped silently."""
    folder = Path(os.path.expanduser(str(folder)))
    if not folder.is_dir():
        raise DataError(f"folder:{folder}: no such directory", "give folder:PATH with a directory of images")
    root = folder.resolve()
    problems: list = []
    found: list[tuple[str, Path, os.stat_result]] = []
    seen_dirs = {(root.stat().st_dev, root.stat().st_ino)}

    def walk_error(e: OSError) -> None:
        rel = os.path.relpath(e.filename, root) if e.filename else "?"
        problems.append([rel + "/", "folder cannot be listed", e.strerror or str(e)])

    for dirpath, dirnames, filenames in os.walk(root, onerror=walk_error, followlinks=True):
        keep = []
        for d in sorted(dirnames):
            try:
                st = os.stat(os.path.join(dirpath, d))
            except OSError as e:
                problems.append([os.path.relpath(os.path.join(dirpath, d), root) + "/", "folder cannot be listed",
                                 e.strerror or str(e)])
                continue
            if (st.st_dev, st.st_ino) in seen_dirs:   # a link back to a folder already walked
                problems.append([os.path.relpath(os.path.join(dirpath, d), root) + "/", "link loop",
                                 "a link to a folder already read"])
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
            keep.append(d)
        dirnames[:] = keep
        for name in filenames:
            path = Path(dirpath) / name
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            rel = os.path.relpath(path, root)
            try:
                st = os.stat(path)
            except OSError as e:   # a dangling link, a link loop (ELOOP), no permission
                reason = "link loop" if getattr(e, "errno", None) == 40 else "cannot be read"
                problems.append([rel, reason, e.strerror or str(e)])
                continue
            if not stat.S_ISREG(st.st_mode):
                problems.append([rel, "not a regular file", "a FIFO, device or socket is never read"])
                continue
            found.append((rel, path, st))
    found.sort(key=lambda t: t[0])
    if not found:
        raise DataError(f"folder:{folder}: no images found (looked recursively for "
                        f"{', '.join(sorted(IMAGE_SUFFIXES))})"
                        + (f"; {len(problems)} entries could not be read, first {problems[0][0]} "
                           f"({problems[0][1]})" if problems else ""), "put PNG or JPEG files in the folder")
    rels = [rel for rel, _, _ in found]
    parts = [Path(rel).parts for rel in rels]
    classes = sorted({p[0] for p in parts if len(p) > 1})
    labels = None
    if classes and len(classes) > 1 and all(len(p) > 1 for p in parts):
        index = {c: i for i, c in enumerate(classes)}
        labels = [index[p[0]] for p in parts]
    else:
        classes = []
    entries = [[rel, st.st_size, st.st_mtime_ns] for rel, _, st in found]
    return Source(f"folder:{root}", [str(p) for _, p, _ in found], rels, labels, classes, entries, problems,
                  root=str(root))


# ---- writing a prepared set ---------------------------------------------------------------------------------------


def _npy_header(shape: tuple) -> bytes:
    text = repr({"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})
    body = text.encode("latin1")
    pad = HEADER_BYTES - 10 - len(body) - 1
    if pad < 0:
        raise ValueError(f"shape {shape} does not fit the .npy header")
    return b"\x93NUMPY\x01\x00" + (HEADER_BYTES - 10).to_bytes(2, "little") + body + b" " * pad + b"\n"


_job: dict = {}   # what each decoding worker needs: set before the workers fork


def _init_worker(read, how: Decoding) -> None:
    """In each decoding process: Ctrl-C is the main process's to handle, and SIGTERM ends the worker (the main
    process's Pool.terminate relies on it; a forked worker would otherwise inherit the handler of `wgan train`,
    which only notes the stop, and the terminate would wait for it for ever)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _job.update(read=read, how=how)


def _pooled(pool, results):
    """The pool's results in order; a worker that ended (a signal sent to the whole process group) takes its task
    with it, which the pool would wait for for ever: that stops the preparation instead."""
    pids = {p.pid for p in pool._pool}
    while True:
        try:
            yield from results.next(timeout=1.0)
        except StopIteration:
            return
        except multiprocessing.TimeoutError:
            if {p.pid for p in pool._pool} != pids or any(p.exitcode is not None for p in pool._pool):
                raise DataError("a decoding process ended before the preparation did (stopped by a signal?)",
                                "run the command again; what was prepared so far is not kept") from None


def _decode_some(items: list) -> list:
    return [_decode_one(item) for item in items]


def _decode_one(item):
    i, key = item
    try:
        arr, gray = decode(_job["read"](key), _job["how"])
        return i, arr, gray, "", ""
    except Skipped as e:
        return i, None, False, e.reason, e.detail
    except OSError as e:   # the file vanished or cannot be opened
        return i, None, False, "cannot be read", e.strerror or str(e)
    except KeyError:
        return i, None, False, "cannot be read", "no such key"


@dataclass
class Prepared:
    """An opened prepared set: `images` is the read-only memory map (N, H, W, C)."""

    path: Path
    images: np.ndarray
    labels: np.ndarray | None
    manifest: dict

    @property
    def digest(self) -> str:
        return self.manifest["digest"]

    @property
    def skipped(self) -> list:
        return self.manifest.get("skipped", [])


def prepare(source: Source, out: Path, how: Decoding, *, workers: int = 2, strict: bool = False,
            progress: Progress | None = None, channels: str = "auto", key: str = "") -> Prepared:
    """Decode every item of `source` into the prepared set `out` (written next to it and renamed into place, so
    a stopped preparation leaves no half set). `strict`: stop at the first file that gives no image."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{os.getpid()}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        _write(source, tmp, how, workers, strict, progress, channels, key)
        _install(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return open_prepared(out)


def _write(source: Source, tmp: Path, how: Decoding, workers: int, strict: bool, progress: Progress | None,
           channels: str, key: str) -> dict:
    if strict and source.problems:
        name, reason, detail = source.problems[0]
        raise DataError(f"{_under(source, name)}: {reason} ({detail})",
                        "remove or replace it, or drop --strict to skip what cannot be read")
    n, size = len(source.items), how.size
    row = size * size * 3
    skipped = [list(p) for p in source.problems]
    labels: list[int] = []
    gray_all = True
    start = time.perf_counter()
    jobs = list(enumerate(source.items))
    pool = None
    if workers > 1 and n > 1:
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        pool = ctx.Pool(workers, initializer=_init_worker, initargs=(source.read, how))
        groups = [jobs[k: k + 4] for k in range(0, len(jobs), 4)]   # 4 files per task: less messaging
        results = _pooled(pool, pool.imap(_decode_some, groups))
    else:
        _init_worker_here(source.read, how)
        results = map(_decode_one, jobs)
    path = tmp / "images.npy"
    good = 0
    try:
        with open(path, "wb") as f:
            f.write(_npy_header((n, size, size, 3)))
            for done, (i, arr, gray, reason, detail) in enumerate(results, 1):
                if arr is None:
                    if strict:
                        raise DataError(f"{_under(source, source.names[i])}: {reason} ({detail})",
                                        "remove or replace the file, or drop --strict to skip what cannot be read")
                    skipped.append([source.names[i], reason, detail])
                else:
                    f.write(np.ascontiguousarray(arr).tobytes())
                    gray_all &= gray
                    if source.labels is not None:
                        labels.append(source.labels[i])
                    good += 1
                if progress:
                    progress(done, n, time.perf_counter() - start)
            f.seek(0)
            f.write(_npy_header((good, size, size, 3)))
            f.truncate(HEADER_BYTES + good * row)
        if pool is not None:   # every task done: the workers leave on their own
            pool.close()
    finally:
        if pool is not None:
            pool.terminate()   # after close: nothing left to end; after an error: the workers stop now
            pool.join()
    if good == 0:
        counts = _counts(skipped)
        raise DataError(f"{source.name}: no readable images ({summary_text(skipped, counts)})",
                        "check the folder; the files may be damaged or not images")
    c = 1 if channels == "1" or (channels == "auto" and gray_all) else 3
    if c == 1:
        _keep_first_channel(path, good, size)
    if source.labels is not None:
        np.save(tmp / "labels.npy", np.asarray(labels, dtype=np.int64))
    manifest = {
        "format": FORMAT, "version": VERSION, "source": source.name, "count": good, "size": size, "channels": c,
        **{k: v for k, v in how.to_json().items() if k != "size"},
        "classes": source.classes, "labels": source.labels is not None,
        "skipped": [{"name": s[0], "reason": s[1], "detail": s[2]} for s in skipped],
        "skipped_counts": _counts(skipped), "key": key, "seconds": round(time.perf_counter() - start, 3),
    }
    manifest["digest"] = _digest(tmp)
    (tmp / "sources.json").write_text(json.dumps(source.entries))
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def _init_worker_here(read, how: Decoding) -> None:
    _job.update(read=read, how=how)


def _under(source: Source, name: str) -> str:
    return str(Path(source.root) / name) if source.root else name


def _keep_first_channel(path: Path, n: int, size: int) -> None:
    """Every image was grayscale: keep one channel (rewritten in place, chunk by chunk, front to back)."""
    mm = np.memmap(path, dtype=np.uint8, mode="r+", offset=HEADER_BYTES, shape=(n * size * size * 3,))
    pixels = size * size
    step = max(1, (64 << 20) // (pixels * 3))
    for i in range(0, n, step):
        j = min(n, i + step)
        chunk = np.array(mm[i * pixels * 3: j * pixels * 3]).reshape(-1, 3)[:, 0]
        mm[i * pixels: j * pixels] = chunk
    mm.flush()
    del mm
    with open(path, "r+b") as f:
        f.write(_npy_header((n, size, size, 1)))
        f.truncate(HEADER_BYTES + n * pixels)


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for name in ("images.npy", "labels.npy"):
        p = folder / name
        if p.exists():
            with open(p, "rb") as f:
                while block := f.read(1 << 22):
                    h.update(block)
    return "sha256:" + h.hexdigest()


def _counts(skipped: list) -> dict:
    counts: dict = {}
    for s in skipped:
        counts[s[1]] = counts.get(s[1], 0) + 1
    return counts


def summary_text(skipped: list, counts: dict | None = None) -> str:
    """'3 skipped: 2 truncated file, 1 not an image; first: a.jpg (truncated file), ...'"""
    names = [(s["name"], s["reason"]) if isinstance(s, dict) else (s[0], s[1]) for s in skipped]
    if counts is None:
        counts = {}
        for _, reason in names:
            counts[reason] = counts.get(reason, 0) + 1
    by = ", ".join(f"{k} {r}" for r, k in sorted(counts.items(), key=lambda t: -t[1]))
    first = ", ".join(f"{n!r} ({r})" for n, r in names[:FIRST_FEW])
    more = f", and {len(names) - FIRST_FEW} more" if len(names) > FIRST_FEW else ""
    return f"{len(names)} skipped: {by}; {first}{more}"


def _install(tmp: Path, out: Path) -> None:
    """Put the finished set in place of `out` (an older prepared set there is replaced)."""
    if out.exists():
        if not is_prepared(out):
            raise UsageError(f"{out} exists and is not a prepared image set", "choose another -o, or remove it")
        old = out.parent / f".{out.name}.{os.getpid()}.old"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        try:
            os.replace(tmp, out)
        except OSError:   # another process finished the same set first: its copy stays
            if not is_prepared(out):
                raise


# ---- reading -------------------------------------------------------------------------------------------------------


def is_prepared(path: Path) -> bool:
    try:
        return json.loads((Path(path) / "manifest.json").read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def open_prepared(path: Path) -> Prepared:
    """Open a prepared set without reading it (memory map; no pickle), checking the manifest against the arrays."""
    path = Path(os.path.expanduser(str(path)))
    hint = "prepare it again with `wgan prepare SRC -o DIR --size S`"
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: no readable manifest.json ({e})", hint) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{path}: not a prepared image set", hint)
    if manifest.get("version") != VERSION:
        raise DataError(f"{path}: prepared set version {manifest.get('version')!r}, this wgan reads {VERSION}", hint)
    try:
        images = np.load(path / "images.npy", mmap_mode="r", allow_pickle=False)
        labels = np.load(path / "labels.npy", allow_pickle=False) if manifest.get("labels") else None
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read the arrays ({e})", hint) from None
    n, size, c = manifest.get("count"), manifest.get("size"), manifest.get("channels")
    if images.dtype != np.uint8 or images.shape != (n, size, size, c):
        raise DataError(f"{path}: images.npy holds {images.dtype} {images.shape}, the manifest says uint8 "
                        f"{(n, size, size, c)}", hint)
    if labels is not None and (labels.dtype != np.int64 or labels.shape != (n,) or
                               (n and not 0 <= labels.min() <= labels.max() < max(1, len(manifest["classes"])))):
        raise DataError(f"{path}: labels.npy does not match the manifest", hint)
    return Prepared(path, images, labels, manifest)


# ---- the cache -----------------------------------------------------------------------------------------------------


def cache_root() -> Path:
    return cache_dir() / "prepared"


def cache_key(source: Source, how: Decoding, channels: str) -> str:
    blob = json.dumps([FORMAT, VERSION, source.name, how.to_json(), channels, source.entries,
                       [list(p) for p in source.problems]])
    return hashlib.sha256(blob.encode()).hexdigest()


def cache_path(source: Source, how: Decoding, channels: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", source.name.split(":", 1)[-1]).strip("-")[-40:] or "set"
    where = hashlib.sha256(json.dumps([source.name, how.to_json(), channels]).encode()).hexdigest()[:16]
    return cache_root() / f"{slug}-{how.size}px-{where}"


def cached(source: Source, how: Decoding, *, workers: int = 2, strict: bool = False, channels: str = "auto",
           progress: Progress | None = None) -> tuple[Prepared, list[str]]:
    """The prepared copy of `source` from the cache, made (or made again, when the source changed) if needed.
    Returns it and notes for the user."""
    path = cache_path(source, how, channels)
    key = cache_key(source, how, channels)
    notes = []
    if is_prepared(path):
        try:
            found = open_prepared(path)
        except DataError:
            found = None
        if found is not None and found.manifest.get("key") == key:
            if strict and found.skipped:
                s = found.skipped[0]
                raise DataError(f"{_under(source, s['name'])}: {s['reason']} ({s['detail']})",
                                "remove or replace the file, or drop --strict to skip what cannot be read")
            return found, [f"{source.name}: read the prepared copy in {path} (made earlier; no decoding)"]
        notes.append(f"{source.name} changed since it was prepared ({_changes(path, source)}); preparing again")
    prepared = prepare(source, path, how, workers=workers, strict=strict, progress=progress, channels=channels,
                       key=key)
    m = prepared.manifest
    notes.append(f"{source.name}: prepared {m['count']} images at {m['size']}x{m['size']}x{m['channels']} "
                 f"in {m['seconds']:.1f} s into {path}")
    return prepared, notes


def _changes(path: Path, source: Source) -> str:
    try:
        old = {e[0]: tuple(e[1:]) for e in json.loads((path / "sources.json").read_text())}
    except (OSError, ValueError, TypeError, IndexError):
        return "its file list is unknown"
    new = {e[0]: tuple(e[1:]) for e in source.entries}
    added = len(new.keys() - old.keys())
    removed = len(old.keys() - new.keys())
    changed = sum(1 for k in new.keys() & old.keys() if new[k] != old[k])
    parts = [f"{k} {what}" for k, what in ((added, "added"), (removed, "removed"), (changed, "changed")) if k]
    return ", ".join(parts) or "what could not be read changed"
