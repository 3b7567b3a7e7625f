"""Sinks for engine events: the only place that draws on the terminal.

- RichSink: live progress (step, critic loss, Wasserstein estimate, penalty, it/s, ETA) when stderr is a terminal;
- PlainSink: one line per logging interval otherwise (CI logs, `nohup`, pipes);
- JsonlSink: metrics.jsonl, always; one JSON object per event, appended and flushed at once so a crash loses
  nothing (a line cut by a crash or a full disk is skipped by readers; a write error is an OutputError, exit 7);
- LastValues: keeps the newest statistics and evaluation metrics, for a command's summary.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from wgan_cli.errors import DataError, OutputError
from wgan_cli.events import Artifact, Evaluated, Note, RunFinished, RunStarted, Saved, StepDone

STAT_ORDER = ("w_dist", "loss_d", "gp", "loss_g")


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _eta(step: int, total: int, it_s: float) -> str:
    if it_s <= 0 or step >= total:
        return "0:00:00"
    secs = int((total - step) / it_s)
    return f"{secs // 3600}:{secs // 60 % 60:02d}:{secs % 60:02d}"


def format_stats(stats: dict) -> str:
    keys = [k for k in STAT_ORDER if k in stats] + sorted(k for k in stats if k not in STAT_ORDER)
    return "  ".join(f"{k} {_fmt(stats[k])}" for k in keys)


class PlainSink:
    """One line per StepDone; notes, saves and evaluations on their own lines."""

    def __init__(self, stream: IO | None = None):
        self.stream = stream or sys.stderr

    def __call__(self, event) -> None:
        if isinstance(event, RunStarted):
            what = f"{event.description}: " if event.description else ""
            resumed = f" (resuming at {event.step})" if event.step else ""
            self._print(f"{what}{event.total} iterations{resumed}")
        elif isinstance(event, StepDone):
            self._print(f"[{event.step:>{len(str(event.total))}}/{event.total}] {format_stats(event.stats)}  "
                        f"{event.it_s:.2f} it/s  eta {_eta(event.step, event.total, event.it_s)}")
        elif isinstance(event, Evaluated):
            self._print(f"[{event.step}] eval {format_stats(event.metrics)}")
        elif isinstance(event, Saved):
            self._print(f"[{event.step}] saved {event.kind} {event.path}")
        elif isinstance(event, Artifact):
            self._print(f"[{event.step}] {event.kind} {event.path}")
        elif isinstance(event, Note):
            self._print(("warning: " if event.level == "warning" else "") + event.text)
        elif isinstance(event, RunFinished):
            self._print(f"done: {event.step} iterations in {event.elapsed:.1f} s")

    def _print(self, line: str) -> None:
        # one write per line: processes sharing the stream (torchrun's ranks) never split each other's lines
        self.stream.write(line + "\n")
        self.stream.flush()


class RichSink:
    """A live progress bar with the latest stats; other events print above it."""

    def __init__(self, console=None):
        self.console = console or Console(stderr=True)
        self.progress = None
        self.task = None
        self.last_eval: dict = {}

    def _start(self, event: RunStarted) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"), TextColumn("[cyan]{task.fields[speed]}"),
            TextColumn("eta"), TimeRemainingColumn(),
            console=self.console, transient=False, refresh_per_second=4)
        self.progress.start()
        self.task = self.progress.add_task(escape(event.description or "train"), total=event.total,
                                           completed=event.step, stats="", speed="")

    def __call__(self, event) -> None:
        if isinstance(event, RunStarted):
            self._start(event)
        elif isinstance(event, StepDone) and self.progress is not None:
            shown = {**event.stats, **self.last_eval}
            self.progress.update(self.task, completed=event.step, stats=format_stats(shown),
                                 speed=f"{event.it_s:.2f} it/s")
        elif isinstance(event, Evaluated):
            self.last_eval = {k: v for k, v in event.metrics.items() if isinstance(v, (int, float))}
            self._print(f"[{event.step}] eval {format_stats(event.metrics)}")
        elif isinstance(event, Saved):
            self._print(f"[{event.step}] saved {event.kind} {event.path}", style="dim")
        elif isinstance(event, Artifact):
            self._print(f"[{event.step}] {event.kind} {event.path}", style="dim")
        elif isinstance(event, Note):
            self._print(event.text, style="yellow" if event.level == "warning" else "dim")
        elif isinstance(event, RunFinished):
            self.close()
            self._print(f"done: {event.step} iterations in {event.elapsed:.1f} s")

    def _print(self, line: str, style: str | None = None) -> None:
        # as written: a `[...]` in a note or a path is text, not Rich markup
        self.console.print(line, style=style, markup=False)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


class JsonlSink:
    """metrics.jsonl: {"event": "start"|"step"|"eval"|"saved"|"artifact", "step": N, "time": unix seconds, ...}."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.file = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            cut = False
            if self.path.is_file() and self.path.stat().st_size > 0:
                with open(self.path, "rb") as f:
                    f.seek(-1, 2)
                    cut = f.read(1) != b"\n"
            self.file = open(self.path, "a", encoding="utf-8")
            if cut:   # a line cut short by a crash: end it, so the next row starts a line of its own
                self._write("\n")
        except OSError as e:
            self.close()
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}",
                              "check free space and permissions") from None

    def _write(self, text: str) -> None:
        try:
            self.file.write(text)
            self.file.flush()
        except OSError as e:
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}",
                              "check free space; the checkpoints already written are intact") from None

    def __call__(self, event) -> None:
        if isinstance(event, StepDone):
            row = {"event": "step", "step": event.step, **event.stats, "it_s": event.it_s}
        elif isinstance(event, Evaluated):
            row = {"event": "eval", "step": event.step, **event.metrics}
        elif isinstance(event, Saved):
            row = {"event": "saved", "step": event.step, "kind": event.kind, "path": event.path}
        elif isinstance(event, Artifact):
            row = {"event": "artifact", "step": event.step, "kind": event.kind, "path": event.path}
        elif isinstance(event, RunStarted):
            row = {"event": "start", "step": event.step, "total": event.total}
        else:
            return
        row["time"] = round(time.time(), 3)
        self._write(json.dumps(row) + "\n")

    def close(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            except OSError:   # the data of a failed flush: already reported by the write that failed
                pass
            self.file = None


class LastValues:
    """A sink keeping the newest statistics (StepDone) and every metric's newest value (Evaluated)."""

    def __init__(self):
        self.step = 0
        self.stats: dict = {}
        self.metrics: dict = {}

    def __call__(self, event) -> None:
        if isinstance(event, StepDone):
            self.step, self.stats = event.step, dict(event.stats)
        elif isinstance(event, Evaluated):
            self.metrics.update(event.metrics)


def read_jsonl(path: str | Path) -> list[dict]:
    """The rows (JSON objects) of a file JsonlSink wrote; a line cut short by a crash, or being written right now,
    is skipped."""
    rows = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except (ValueError, RecursionError):   # cut short, or nested beyond the parser: not a row wgan wrote
                    continue
                if isinstance(row, dict):
                    rows.append(row)
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror})", "check the file's permissions") from None
    return rows


def terminal_sinks(quiet: bool = False, plain: bool | None = None) -> list:
    """Rich on a terminal, plain lines otherwise, nothing with --quiet."""
    if quiet:
        return []
    if plain is None:
        plain = not sys.stderr.isatty()
    return [PlainSink()] if plain else [RichSink()]


def note_lines(stream=None):
    """The sink of the commands that show no training progress (`wgan score`, `textgen --ckpt`): each Note event
    as one `note: TEXT` line on stderr; other events are not theirs to show."""
    def show(event) -> None:
        if isinstance(event, Note):
            print(f"note: {event.text}", file=stream or sys.stderr, flush=True)

    return show


def clock(seconds: float) -> str:
    """4000 -> '1:06:40', 75 -> '1:15'."""
    s = int(round(seconds))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def plain_progress(stream=None, every_s: float = 5.0):
    """`wgan score`'s progress: lines on stderr, at most one every `every_s` seconds, and one at the end of each
    pass. Returns a callable (done, total, label)."""
    stream = stream or sys.stderr
    state = {"t": 0.0, "last": {}}

    def show(done: int, total: int, label: str) -> None:
        now = time.perf_counter()
        if done == 0:
            state["last"][label] = (now, 0)
            return
        since, before = state["last"].setdefault(label, (now, 0))
        if done < total and now - state["t"] < every_s:
            return
        state["t"] = now
        state["last"][label] = (now, done)
        # the rate since the previous line: a one-time pause (compiling the network) skews one line, not all
        rate = (done - before) / max(now - since, 1e-9)
        eta = f", ETA {clock((total - done) / rate)}" if done < total and rate > 0 else ""
        print(f"{label}: {done}/{total} images ({rate:.1f} img/s{eta})", file=stream, flush=True)

    return show


def prepare_progress(quiet: bool = False, plain: bool | None = None, every_s: float = 5.0):
    """Progress of decoding a set of image files (`wgan prepare`, a folder's first use): a bar with images/s
    and the time left on a terminal, else a line every `every_s` seconds and one at the end. Returns a callable
    (done, total, seconds since the start), or None with --quiet."""
    if quiet:
        return None
    if plain is None:
        plain = not sys.stderr.isatty()
    state = {"t": 0.0, "bar": None, "task": None}

    def show(done: int, total: int, seconds: float) -> None:
        rate = done / max(seconds, 1e-9)
        eta = (total - done) / rate if rate > 0 else float("inf")
        if not plain:
            if state["bar"] is None:
                state["bar"] = Progress(TextColumn("[bold]preparing"), BarColumn(), MofNCompleteColumn(),
                                        TextColumn("[cyan]{task.fields[speed]}"), TextColumn("eta"),
                                        TimeRemainingColumn(), console=Console(stderr=True), transient=False)
                state["bar"].start()
                state["task"] = state["bar"].add_task("prepare", total=total, speed="")
            state["bar"].update(state["task"], completed=done, speed=f"{rate:.0f} images/s")
            if done >= total:
                state["bar"].stop()
            return
        now = time.perf_counter()
        if done < total and now - state["t"] < every_s:
            return
        state["t"] = now
        left = f", {eta:.0f} s left" if done < total else ""
        print(f"preparing: {done}/{total} images ({rate:.0f} images/s{left})", file=sys.stderr, flush=True)

    return show
