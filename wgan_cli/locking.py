"""One writer per run directory: an exclusive lock on RUN/.lock, held for the whole run.

The lock is an `fcntl.flock` on the file, so the operating system releases it when its owner exits, however it
exits (SIGKILL, a crash, a power cut): a lock whose owner is gone is never held, and nothing has to be cleaned
up. The file itself stays; while the lock is held it says who holds it (pid, host, start time, command line), so
a second run is refused with the owner named. A run directory on a file system without flock support (some
network mounts) is refused with that reason rather than run unprotected.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shlex
import socket
import sys
import time
from pathlib import Path

from wgan_cli.errors import LockedError, OutputError

LOCK_NAME = ".lock"
_held: set[int] = set()   # descriptors of the locks this process holds


def _forget_in_child() -> None:
    """A forked child (a DataLoader worker) closes its copies of the lock descriptors: the lock belongs to the
    process that took it, and must be free as soon as that process is gone, even while its workers wind down."""
    for fd in list(_held):
        try:
            os.close(fd)
        except OSError:
            pass
    _held.clear()


os.register_at_fork(after_in_child=_forget_in_child)


def _owner() -> dict:
    argv = list(sys.argv)
    if argv and Path(argv[0]).name in ("wgan", "__main__.py"):   # `wgan ...` or `python -m wgan_cli ...`
        argv[0] = "wgan"
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": shlex.join(argv)}


def describe(info: dict | None) -> str:
    """'pid 123 on host, started 2024-..., `wgan toy ...`' from the lock file's content (best effort)."""
    if not info:
        return "another process (its details are not readable)"
    parts = [f"pid {info.get('pid', '?')} on {info.get('host', '?')}"]
    if info.get("started"):
        parts.append(f"started {info['started']}")
    if info.get("command"):
        parts.append(f"`{info['command']}`")
    return ", ".join(parts)


def read_owner(path: Path) -> dict | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):   # unreadable, or not what a run wrote
        return None
    return info if isinstance(info, dict) else None


def wait_for_owner(path: Path, timeout: float = 1.0) -> dict | None:
    """The holder's details. The holder writes them just after taking the lock, so a run refused in between
    finds the file still empty: it looks again, every 20 ms for up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while (info := read_owner(path)) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return info


class RunLock:
    """`with RunLock(run_dir):` holds the run directory's lock, or raises LockedError naming its owner."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as e:
            raise OutputError(f"cannot write to run directory {self.path.parent}: {e.strerror or e}",
                              "choose a writable --out (and check free space)") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LockedError(
                    f"{self.path.parent} is in use by another run: {describe(wait_for_owner(self.path))}",
                    "wait for it to finish (or stop it), or use another --out; the lock is released "
                    "automatically when its process exits") from None
            raise OutputError(f"cannot lock run directory {self.path.parent}: {e.strerror or e}",
                              "use a run directory on a local file system") from None
        try:   # who holds it, for the error a second run shows
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(_owner()) + "\n").encode(), 0)
        except OSError as e:
            os.close(fd)
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}",
                              "check free space and permissions") from None
        self.fd = fd
        _held.add(fd)
        return self

    def release(self) -> None:
        """Unlock; the file stays (removing it would let two processes lock two different files)."""
        if self.fd is not None:
            try:
                os.ftruncate(self.fd, 0)   # no stale owner shown to anyone who reads it later
            except OSError:
                pass
            _held.discard(self.fd)
            os.close(self.fd)   # closing the descriptor releases the flock
            self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> bool:
        self.release()
        return False
