"""Run directories: their layout, resuming from them, and the checkpoint callback that writes into them.

A run directory holds:
  options.json                     the resolved options of the command (appended to on resume: options.N.json)
  metrics.jsonl                    one JSON object per logging interval, evaluation and save
  ckpt-0001000.safetensors         train-state checkpoints (G, D, optimisers, RNG, data cursor); newest kept
  generator.safetensors            generator-only checkpoint of the newest state (for `sample`, `score`)
  .lock                            held by the run that writes here (locking.py): one writer per directory
Resume: `--resume auto` (default) continues from the newest train-state checkpoint that loads and verifies,
skipping damaged ones with a warning; `--resume never` refuses a directory that already holds checkpoints
(nothing already written is overwritten); `--resume PATH` starts from that checkpoint. A checkpoint of another
model or other data is refused with the difference shown, unless `--resume-with-changes` is given (the weights
must still fit the model).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch

from wgan_cli import checkpoint, files
from wgan_cli.distributed import SAME_HARDWARE, Group
from wgan_cli.engine import Callback, Engine
from wgan_cli.errors import CheckpointError, DistributedError, OutputError, UsageError
from wgan_cli.events import Note, Saved
from wgan_cli.locking import RunLock

CKPT_RE = re.compile(r"^ckpt-(\d+)\.safetensors$")


class RunDir:
    """One run directory (the layout above): its paths, creating it, its lock, a killed write's leftovers."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def create(self) -> "RunDir":
        """Make the folder; whether it can be written is found by taking its lock (`lock`)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create run directory {self.path}: {e.strerror or e}",
                              "choose a writable --out") from None
        if not self.path.is_dir():
            raise OutputError(f"cannot create run directory {self.path}: a file of that name exists",
                              "choose another --out")
        return self

    def lock(self) -> RunLock:
        """The run directory's exclusive lock, taken by `with run_dir.lock():` (LockedError naming the owner if
        another run holds it)."""
        return RunLock(self.path)

    def check_shared(self, group: Group) -> None:
        """Refuse a run directory that is not one folder for every rank (a node's own disk): rank 0 writes the
        checkpoints, and every rank reads them on resume."""
        if group.world == 1:
            return
        token = group.broadcast_int(int.from_bytes(os.urandom(7), "little"))   # rank 0's
        probe = self.path / f".rank0-{token:x}"
        group.agree(lambda: files.write_text(probe, ""), here=group.is_writer)

        def visible():
            if not probe.is_file():
                raise UsageError(f"rank {group.rank} does not see rank 0's files in {self.path}: the run directory "
                                 "must be one folder for every rank", "give an --out on a file system every node "
                                                                      "mounts at the same path (NFS, Lustre, ...)")
        try:
            group.agree(visible, here=not group.is_writer)
        finally:
            if group.is_writer:
                probe.unlink(missing_ok=True)

    def clean(self) -> list[Note]:
        """Remove the temporary files of a write that a killed process left (only ours, by name)."""
        removed = files.clean_temporaries(self.path, ("samples", "figures"))
        if not removed:
            return []
        names = ", ".join(str(p.relative_to(self.path)) for p in removed[:5]) + (" ..." if len(removed) > 5 else "")
        return [Note(f"removed {len(removed)} temporary file(s) left by an interrupted write: {names}")]

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
        return files.write_text(target, json.dumps(options, indent=2, sort_keys=True, default=str) + "\n")


def resume(engine: Engine, run_dir: RunDir, mode: str, *, task: str, model: dict, same: dict | None = None,
           allow_changes: bool = False, train: dict | None = None) -> list:
    """Load the state to resume from into `engine`; returns Note events to show.

    The checkpoint must hold the same model spec, and the same values of `same` in its "extra" metadata (what
    identifies the data, e.g. the character map of a text run). With `allow_changes` a difference in either is
    shown and accepted, as long as the checkpoint's weights load into the model the options build. Changed
    training options (`train`, e.g. more --iters) are shown as a note."""
    notes = []
    if mode == "never":
        if run_dir.checkpoints():
            raise UsageError(f"{run_dir.path} already holds checkpoints and --resume never was given",
                             "use --resume auto to continue that run, or a new --out directory")
        return notes
    if mode == "auto":
        candidates = run_dir.checkpoints()
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
        override = "; or add --resume-with-changes to continue from this state anyway"
        if meta["model"] != model:
            what = f"a different model ({meta['model'].get('arch')}, {_diff(meta['model'], model)})"
            if not allow_changes:
                raise CheckpointError(f"{path}: holds {what} than the options ask for",
                                      "use a new --out directory, or the original options" + override)
            notes.append(Note(f"--resume-with-changes: {path} holds {what}", "warning"))
        extra = meta.get("extra", {})
        changed = {k: v for k, v in (same or {}).items() if extra.get(k) != v}
        if changed:
            what = f"different data than the options give ({_diff({k: extra.get(k) for k in changed}, changed)})"
            if not allow_changes:
                raise CheckpointError(f"{path}: trained on {what}",
                                      "resume with the original options, or use a new --out directory" + override)
            notes.append(Note(f"--resume-with-changes: {path} was trained on {what}", "warning"))
        try:
            engine.load_state_tensors(tensors, meta["step"])
        except (RuntimeError, KeyError, ValueError) as e:   # only with changes allowed: weights of another shape
            raise CheckpointError(f"{path}: its weights do not fit the model the options build "
                                  f"({str(e).strip().splitlines()[0]})",
                                  "resume with the checkpoint's model options, or use a new --out directory") from None
        if train:
            changed_train = {k: v for k, v in train.items() if k in meta["train"] and meta["train"][k] != v}
            if changed_train:
                notes.append(Note("options changed since the checkpoint (checkpoint's vs now): "
                                  + _diff({k: meta["train"][k] for k in changed_train}, changed_train)))
        notes.append(Note(f"resumed from {path} at iteration {meta['step']}"))
        return notes
    return notes


def resume_every_rank(group: Group, engine: Engine, run_dir: RunDir, mode: str, **how) -> list:
    """`resume` on rank 0, which picks the checkpoint (its notes returned); then every other rank loads the same
    file. `how`: resume's keyword arguments."""
    notes = group.agree(lambda: resume(engine, run_dir, mode, **how), here=group.is_writer) or []
    if group.world > 1:
        step = group.broadcast_int(engine.step)
        path = str(run_dir.ckpt_path(step)) if mode in ("auto", "never") else mode
        group.agree(lambda: resume(engine, run_dir, path, **how), here=not group.is_writer and step > 0)
    return notes


def _diff(a: dict, b: dict) -> str:
    """`key: checkpoint's vs the options'` for each differing key; long lists by their length."""
    def shown(v):
        return f"{len(v)} entries" if isinstance(v, list) and len(v) > 8 else v

    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ", ".join(f"{k}: {shown(a.get(k))} vs {shown(b.get(k))}" for k in keys) or "same keys"


def generator_state(G: torch.nn.Module, G_ema: torch.nn.Module | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a generator-only checkpoint: G (and its EMA copy under `G_ema.`)."""
    state = {"G." + k: v for k, v in G.state_dict().items()}
    if G_ema is not None:
        state.update({"G_ema." + k: v for k, v in G_ema.state_dict().items()})
    return state


def check_replicas(group: Group, engine: Engine) -> None:
    """Before a save: every rank's state (weights, optimisers, random generator, data cursor) equal to the bit.
    A difference stops the run instead of saving one rank's version."""
    if group.world == 1:
        return
    if not group.same_bytes(checkpoint.digest(engine.state_tensors()).encode()):
        raise DistributedError(f"the ranks' replicas differ at iteration {engine.step}; nothing was saved",
                               f"resume from the last checkpoint in the run directory; {SAME_HARDWARE}")


def checkpoint_callback(run_dir: RunDir, *, task: str, model: dict, train: dict, extra: dict | None = None,
                        every: int = 1000, keep: int = 3) -> Callback:
    """Save a train-state and a generator-only checkpoint every `every` iterations, at the end and on a signal.
    Old train-states are pruned only after the new one is in place; at least 2 are kept."""
    keep = max(keep, 2)

    def write(engine: Engine):
        step = engine.step
        path = checkpoint.save(run_dir.ckpt_path(step), engine.state_tensors(), kind="train-state", task=task,
                               model=model, train=train, step=step, extra=extra)
        yield Saved(step, str(path), "train-state")
        checkpoint.save(run_dir.generator_path, generator_state(engine.G, engine.G_ema), kind="generator", task=task,
                        model=model, train=train, step=step, extra=extra)
        for old in run_dir.checkpoints()[keep:]:
            old.unlink(missing_ok=True)

    def save(engine: Engine, final: bool):
        group = engine.dist   # under torchrun: replicas compared, rank 0 writes, every rank waits for it
        check_replicas(group, engine)
        yield from group.agree(lambda: list(write(engine)), here=group.is_writer) or ()

    return Callback(save, every=every, on_interrupt=True, collective=True)
