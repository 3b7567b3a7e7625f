"""Run directories, shared by every training command (`toy`, `train`, `textgen`).

A run directory holds:
  options.json                     the resolved options of the command (appended to on resume: options.N.json)
  metrics.jsonl                    one JSON object per logging interval, evaluation and save
  ckpt-0001000.safetensors         train-state checkpoints (G, D, optimisers, RNG, data cursor); newest kept
  generator.safetensors            generator-only checkpoint of the newest state (for `sample`, `score`)
Resume: `--resume auto` (default) continues from the newest train-state checkpoint that loads and verifies,
skipping damaged ones with a warning; `--resume never` refuses a directory that already holds checkpoints
(nothing already written is overwritten); `--resume PATH` starts from that checkpoint.
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

from wgan_cli import checkpoint
from wgan_cli.engine import Callback, Engine
from wgan_cli.errors import CheckpointError, OutputError, UsageError
from wgan_cli.events import Note, Saved

CKPT_RE = re.compile(r"^ckpt-(\d+)\.safetensors$")


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def create(self) -> "RunDir":
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise OutputError(f"cannot write to run directory {self.path}: {e.strerror}",
                              "choose a writable --out") from None
        return self

    def ckpt_path(self, step: int) -> Path:
        return self.path / f"ckpt-{step:07d}.safetensors"

    @property
    def generator_path(self) -> Path:
        return self.path / "generator.safetensors"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def checkpoints(self) -> list[Path]:
        """Train-state checkpoints, newest first."""
        if not self.path.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.path.iterdir() if (m := CKPT_RE.match(p.name))]
        return [p for _, p in sorted(found, reverse=True)]

    def write_options(self, options: dict) -> Path:
        target = self.path / "options.json"
        n = 1
        while target.exists():   # a resumed run keeps the first options and adds its own
            n += 1
            target = self.path / f"options.{n}.json"
        target.write_text(json.dumps(options, indent=2, sort_keys=True, default=str) + "\n")
        return target


def resume(engine: Engine, run: RunDir, mode: str, *, task: str, model: dict) -> list:
    """Load the state to resume from into `engine`; returns Note events to show."""
    notes = []
    if mode == "never":
        if run.checkpoints():
            raise UsageError(f"{run.path} already holds checkpoints and --resume never was given",
                             "use --resume auto to continue that run, or a new --out directory")
        return notes
    if mode == "auto":
        candidates = run.checkpoints()
    else:
        candidates = [Path(mode)]
    for path in candidates:
        try:
            tensors, meta = checkpoint.load(path, kind="train-state", task=task, command="--resume")
        except CheckpointError as e:
            if mode != "auto":
                raise
            notes.append(Note(f"skipping damaged checkpoint: {e.message}", "warning"))
            continue
        if meta["model"] != model:
            raise CheckpointError(f"{path}: holds a different model ({meta['model'].get('arch')}, "
                                  f"{_diff(meta['model'], model)}) than the options ask for",
                                  "use a new --out directory, or the original options")
        engine.load_state_tensors(tensors, meta["step"])
        notes.append(Note(f"resumed from {path} at iteration {meta['step']}"))
        return notes
    return notes


def _diff(a: dict, b: dict) -> str:
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ", ".join(f"{k}: {a.get(k)} vs {b.get(k)}" for k in keys) or "same keys"


def checkpoint_callback(run: RunDir, *, task: str, model: dict, train: dict, extra: dict | None = None,
                        every: int = 1000, keep: int = 3) -> Callback:
    """Save a train-state and a generator-only checkpoint every `every` iterations, at the end and on a signal.
    Old train-states are pruned only after the new one is in place; at least 2 are kept."""
    keep = max(keep, 2)

    def save(engine: Engine, final: bool):
        step = engine.step
        path = checkpoint.save(run.ckpt_path(step), engine.state_tensors(), kind="train-state", task=task,
                               model=model, train=train, step=step, extra=extra)
        yield Saved(step, str(path), "train-state")
        gen = {"G." + k: v for k, v in engine.G.state_dict().items()}
        if engine.G_ema is not None:
            gen.update({"G_ema." + k: v for k, v in engine.G_ema.state_dict().items()})
        checkpoint.save(run.generator_path, gen, kind="generator", task=task, model=model, train=train,
                        step=step, extra=extra)
        for old in run.checkpoints()[keep:]:
            old.unlink(missing_ok=True)

    return Callback(save, every=every, on_interrupt=True)


class StopFlag:
    """SIGINT / SIGTERM set a flag; the loop saves at the next step boundary and exits 130 / 143.
    A second SIGINT while saving is ignored only until the save completes: the default handler returns after."""

    def __init__(self):
        self.signum = 0
        self._old = {}

    def __call__(self) -> int:
        return self.signum

    def _handler(self, signum, frame):
        self.signum = signum

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handler)
            except ValueError:   # not the main thread: leave the handlers alone
                pass
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False
