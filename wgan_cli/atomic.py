"""Atomic output files: a full disk or a crash never leaves a truncated file nor destroys a good one.

    with atomic_path(out, "animation") as tmp:
        write_somehow(tmp)

The body writes to a temp file in the destination's folder (same file system, so the rename is atomic; its name
keeps the destination's suffix, for writers that choose the format from it). On success the temp file is fsynced
and os.replace'd onto the destination and the folder fsynced; on any failure the temp file is removed and the
destination is untouched. OSErrors become OutputError (exit code 7) naming the file.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from wgan_cli.errors import OutputError


def fsync_dir(folder: str | Path) -> None:
    """Make a rename inside `folder` durable (best effort: some file systems refuse fsync on a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | Path, what: str = "output") -> Iterator[Path]:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise OutputError(f"cannot write {what} {path}: {e.strerror or e}", "choose a writable output path") from None
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as e:
        raise OutputError(f"cannot write {what} {path}: {e.strerror or e}",
                          "check free space and permissions") from None
    finally:
        tmp.unlink(missing_ok=True)
