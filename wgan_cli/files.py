"""Writing files so that a crash or a full disk never leaves a truncated one, and reading safetensors headers.

`atomic_path(path)` is the one way wgan writes a file: the content goes to a temporary file in the same folder,
is flushed and fsynced, replaces the target with os.replace (atomic on POSIX), and the folder is fsynced so the
rename itself survives a power cut. Until the rename the old file (if any) is untouched; on any error the
temporary file is removed and the error becomes an OutputError naming the path (exit code 7).

Temporary files are named `.NAME.XXXXXXXX.tmp` (mkstemp's 8 random characters), so a run directory can
recognise its own leftovers of a killed process and remove them (`clean_temporaries`), and nothing else.
"""

from __future__ import annotations

import errno
import json
import os
import re
import struct
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from safetensors import SafetensorError
from safetensors.torch import load, load_file, save_file

from wgan_cli.errors import OutputError

MAX_HEADER_BYTES = 100 * 1024 * 1024   # safetensors' own limit; a larger claim is a damaged or foreign file
TMP_SUFFIX = ".tmp"
TMP_RE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")   # what atomic_path's mkstemp names look like



def cache_dir() -> Path:
    """wgan's cache (Inception weights, reference statistics, prepared image sets): $WGAN_CACHE_DIR, else
    $XDG_CACHE_HOME/wgan, else ~/.cache/wgan."""
    if os.environ.get("WGAN_CACHE_DIR"):
        return Path(os.environ["WGAN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "wgan"


@contextmanager
def atomic_path(path: str | Path, hint: str = "check free space and permissions") -> Iterator[Path]:
    """Yield a temporary path to write `path`'s new content to; on success it becomes `path` atomically."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}", hint) from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        _apply_umask(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}", hint) from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _apply_umask(path: Path) -> None:
    """mkstemp creates 0600 files; give the result the mode any other new file would get (0666 & ~umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass   # some file systems cannot fsync a directory; the rename is still atomic
    finally:
        os.close(fd)


def write_bytes(path: str | Path, data: bytes, hint: str = "check free space and permissions") -> Path:
    with atomic_path(path, hint) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str, hint: str = "check free space and permissions") -> Path:
    return write_bytes(path, text.encode("utf-8"), hint)


def write_safetensors(path: str | Path, tensors: dict, metadata: dict[str, str],
                      hint: str = "check free space and permissions") -> Path:
    """Tensors (already contiguous, on the CPU) plus string metadata, written atomically."""
    with atomic_path(path, hint) as tmp:
        try:
            save_file(tensors, str(tmp), metadata=metadata)
        except SafetensorError as e:   # safetensors reports a failed write (e.g. ENOSPC) as its own error
            raise _as_os_error(str(e)) from None
    return Path(path)


def read_safetensors(path: str | Path) -> dict:
    """Every tensor of a safetensors file, on the CPU. safetensors' own file reader takes UTF-8 paths only; a file
    whose name is not UTF-8 (a byte-named folder on Linux) is read into memory first and parsed from there."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return load(Path(path).read_bytes())
    return load_file(str(path), device="cpu")


def _as_os_error(text: str) -> OSError:
    """safetensors' write errors carry the OS error only as text ("... (os error 28)", "Os { code: 28, ...")."""
    m = re.search(r"(?:os error |code: )(\d+)", text)
    if m:
        code = int(m.group(1))
        return OSError(code, os.strerror(code))
    return OSError(errno.EIO, text)


def clean_temporaries(folder: str | Path, subfolders: tuple[str, ...] = ()) -> list[Path]:
    """Remove the temporary files atomic_path leaves behind when its process is killed mid-write (only names of
    the `.NAME.XXXXXXXX.tmp` form, in `folder` and the given subfolders); returns what was removed. Call it only
    while no other process writes there (a run directory under its lock)."""
    removed = []
    for where in (Path(folder), *(Path(folder) / s for s in subfolders)):
        try:
            entries = list(where.iterdir())
        except OSError:
            continue
        for p in entries:
            if TMP_RE.match(p.name) and p.is_file() and not p.is_symlink():
                try:
                    p.unlink()
                except OSError:
                    continue
                removed.append(p)
    return removed


def read_header(path: str | Path, max_bytes: int = MAX_HEADER_BYTES) -> dict | None:
    """The JSON header of a safetensors file (tensor entries and `__metadata__`), read without loading any
    tensor; None when the file is not a safetensors file (too short, a header length above `max_bytes`, not
    JSON) or is truncated (its tensor data would end beyond the end of the file)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return None
        (n,) = struct.unpack("<Q", head)
        if n > max_bytes or n + 8 > size:
            return None
        try:
            header = json.loads(f.read(n))
        except (ValueError, RecursionError):   # not JSON, or nested deeply enough to exhaust the parser
            return None
    if not isinstance(header, dict):
        return None
    try:   # a file cut short: the tensor data ends beyond the end of the file
        data_end = max((int(e["data_offsets"][1]) for k, e in header.items() if k != "__metadata__"), default=0)
    except (TypeError, KeyError, IndexError, ValueError, OverflowError):
        return None
    return header if 8 + n + data_end <= size else None


def header_metadata(path: str | Path, key: str) -> dict | None:
    """The JSON object stored under `key` in a safetensors file's metadata, or None."""
    try:
        header = read_header(path)
    except OSError:
        return None
    meta = (header or {}).get("__metadata__")
    if not isinstance(meta, dict) or not isinstance(meta.get(key), str):
        return None
    try:
        value = json.loads(meta[key])
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
