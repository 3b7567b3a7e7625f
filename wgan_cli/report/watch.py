"""`wgan report RUN... -o DIR --watch [SECONDS]`: the report kept up to date while its runs train.

Every SECONDS the run directories are looked at; when any of them changed (a new row in metrics.jsonl, a
resumed segment's options, a run that started or ended) the whole report is written again, each file
atomically (files.py), index.html last, so a reader never sees half a page. While any run is still going the
page carries a refresh tag, so a browser showing it reloads itself; the watch stops, leaving a page without
one, when every run has ended (runs.run_is_going: the run's lock, which a training command empties when it
exits), or on Ctrl-C / SIGTERM (exit 130 / 143, after a last complete page).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from wgan_cli.errors import Interrupted
from wgan_cli.report.runs import LOCK_NAME, run_is_going

POLL = 0.1   # seconds between looks at the stop flag while waiting


def fingerprint(paths: list[Path]) -> tuple:
    """What changes when a run moves on: size and time of each file the report reads, and the lock's."""
    seen = []
    for path in paths:
        names = sorted(p.name for p in path.glob("options*.json")) + ["metrics.jsonl", LOCK_NAME]
        for name in names:
            try:
                st = (path / name).stat()
                seen.append((str(path), name, st.st_size, st.st_mtime_ns))
            except OSError:
                seen.append((str(path), name, None, None))
    return tuple(seen)


def watch(write: Callable[[float | None], dict], paths: list[Path], seconds: float,
          say: Callable[[str], None] = print) -> dict:
    """Call `write(refresh)` (the report, with a page that reloads every `refresh` seconds, or None for a page
    that stays) whenever `paths` changed, until no run is going; returns the last result, with "rewrites" (how
    many times the report was written). Ctrl-C / SIGTERM: a last page without the refresh tag, then
    Interrupted (exit 130 / 143)."""
    from wgan_cli.runs import StopFlag   # the training commands' flag: a signal ends the wait, not a write

    last, result, rewrites = None, None, 0
    with StopFlag() as stop:
        while True:
            now = fingerprint(paths)   # before asking who is going: a run ending in between is written again
            going = [p for p in paths if run_is_going(p)]
            if now != last:
                result = write(seconds if going else None)
                rewrites += 1
                last = now
                say(f"wrote {result['out_dir']}/index.html ({rewrites}): "
                    + (f"{len(going)} of {len(paths)} runs still going" if going else "every run has ended"))
            if not going:
                break
            deadline = time.monotonic() + seconds
            while not stop() and time.monotonic() < deadline:
                time.sleep(min(POLL, seconds))
            if stop():
                result = write(None)
                rewrites += 1
                raise Interrupted(stop(), f"stopped watching after {rewrites} rewrites; "
                                          f"{result['out_dir']}/index.html is complete",
                                  "run the same command again to go on watching")
    return {**result, "rewrites": rewrites}
