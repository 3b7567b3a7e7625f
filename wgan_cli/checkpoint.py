"""The one checkpoint format: a single .safetensors file, tensors plus JSON metadata. Nothing is ever unpickled.

Metadata (header key "wgan", a JSON string):
  format "wgan-checkpoint", version, kind ("train-state" | "generator"), task ("toy" | "image" | "text"),
  model (the spec that rebuilds G and D), train (the resolved TrainConfig), step, extra (task data such as the
  vocabulary), versions, and digest: SHA-256 over every tensor's name, dtype, shape and bytes *and* over the
  canonical metadata (json.dumps(sort_keys=True) of everything but the digest). safetensors itself has no checksum.
  Version 1 files (digest over the tensors only) are still read, with a note that their metadata is not covered.

A file is untrusted input. Loading goes: the 8-byte header length (bounded) -> the JSON header -> the metadata
against its schema (types, allowed values, bounded sizes; checkpoint_schema.validate_meta) -> the tensor names,
dtypes and shapes against those of the model the spec builds on the `meta` device (nothing allocated;
checkpoint_schema.validate_tensors) -> only
then the tensors -> the digest. Anything wrong is a CheckpointError (exit code 4), never a traceback.

Writes are atomic (files.atomic_path). `load_generator` rebuilds G from a checkpoint's metadata alone, for
`sample`, `score` and `textgen --ckpt`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from wgan_cli import files, models
from wgan_cli.version import __version__
from wgan_cli.checkpoint_schema import FORMAT, KINDS, TASKS, VERSION, validate_meta, validate_tensors
from wgan_cli.errors import CheckpointError

PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".tar", ".bin", ".joblib"}
MAX_HEADER_BYTES = 16 * 1024 * 1024   # the largest real header (resnet101 train state, 32767-character map) is < 1 MB
V1_NOTE = "{path}: a version-1 checkpoint: its digest covers the tensors but not the metadata (step, model, vocabulary)"


def refuse_pickle(path: Path) -> None:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise CheckpointError(
            f"{path}: {path.suffix} files are pickles, which can run arbitrary code when loaded; wgan never "
            "unpickles a file it is given",
            "wgan checkpoints are .safetensors files written by `wgan train`, `wgan toy` or `wgan textgen`")


def canonical(meta: dict) -> str:
    """The metadata as the digest sees it: every key but the digest, sorted, in JSON."""
    return json.dumps({k: v for k, v in meta.items() if k != "digest"}, sort_keys=True)


def digest(tensors: dict[str, torch.Tensor], meta: dict | None = None) -> str:
    """SHA-256 over each tensor's name, dtype, shape and bytes, then (version 2) the canonical metadata."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    if meta is not None:
        h.update(b"metadata|" + canonical(meta).encode())
    return h.hexdigest()


def save(path: str | Path, tensors: dict[str, torch.Tensor], *, kind: str, task: str, model: dict,
         train: dict | None = None, step: int = 0, extra: dict | None = None) -> Path:
    """Write atomically; refuse non-finite weights (a NaN checkpoint is worse than none)."""
    assert kind in KINDS and task in TASKS, (kind, task)
    # own every tensor (safetensors refuses shared storage) and move it to the CPU
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    for name, t in tensors.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(f"refusing to save non-finite values in {name} at iteration {step}",
                                  "the run diverged; resume from the previous checkpoint with a lower --lr")
    meta = {
        "format": FORMAT, "version": VERSION, "kind": kind, "task": task, "model": model,
        "train": train or {}, "step": int(step), "extra": extra or {},
        "versions": {"wgan": __version__, "torch": torch.__version__},
    }
    meta = json.loads(json.dumps(meta))   # exactly what a reader will parse (tuples become lists)
    meta["digest"] = digest(tensors, meta)
    return files.write_safetensors(path, tensors, {"wgan": json.dumps(meta)}, "check free space and permissions")


def _read(path: Path) -> tuple[dict, dict]:
    """(header, validated metadata) of a checkpoint file, without reading any tensor."""
    refuse_pickle(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file", "give the path of a .safetensors checkpoint")
    try:
        size = path.stat().st_size
        header = files.read_header(path, MAX_HEADER_BYTES)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror or e})",
                              "check the path and its permissions") from None
    if header is None:
        raise CheckpointError(f"{path}: not a safetensors file, or truncated ({size} bytes)",
                              "use a .safetensors checkpoint written by wgan")
    stored = header.get("__metadata__")
    try:
        meta = json.loads(stored["wgan"])
    except (ValueError, KeyError, TypeError, RecursionError):
        raise CheckpointError(f"{path}: a safetensors file, but not a wgan checkpoint (no wgan metadata)",
                              "use a checkpoint written by wgan") from None
    return header, validate_meta(meta, path)


def read_meta(path: str | Path) -> dict:
    """Read and validate the metadata only (cheap: no tensor is loaded)."""
    return _read(Path(path))[1]


def check(meta: dict, path: Path, *, kind: str | tuple | None = None, task: str | tuple | None = None,
          command: str = "this command") -> None:
    kinds = (kind,) if isinstance(kind, str) else kind
    tasks = (task,) if isinstance(task, str) else task
    if tasks and meta["task"] not in tasks:
        raise CheckpointError(f"{path}: a {meta['task']} checkpoint, but {command} needs a {' or '.join(tasks)} one",
                              _task_hint(meta["task"]))
    if kinds and meta["kind"] not in kinds:
        raise CheckpointError(f"{path}: a {meta['kind']} checkpoint, but {command} needs a {' or '.join(kinds)} one",
                              "train-state checkpoints live in the run directory as ckpt-*.safetensors")


def _task_hint(task: str) -> str:
    return {"toy": "sample toy checkpoints with `wgan sample CKPT -o points.csv`",
            "image": "image checkpoints go to `wgan sample` and `wgan score`",
            "text": "text checkpoints go to `wgan textgen --ckpt CKPT`"}.get(task, "")


def load(path: str | Path, *, kind=None, task=None, command: str = "this command",
         device: str | torch.device = "cpu", notes: list | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Validate the header, load the tensors, verify the digest. Returns (tensors, metadata); a version-1 file's
    note goes to `notes`."""
    path = Path(path)
    header, meta = _read(path)
    check(meta, path, kind=kind, task=task, command=command)
    validate_tensors(header, meta, path)
    try:
        tensors = files.read_safetensors(path)
    except Exception as e:   # safetensors' parser on an untrusted file: several error types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: cannot read tensors ({first})",
                              "the checkpoint is damaged; use an earlier one") from None
    if meta["version"] == 1:
        if digest(tensors) != meta["digest"]:
            raise CheckpointError(f"{path}: checksum mismatch: the tensor data was changed or damaged after saving",
                                  "use an earlier checkpoint")
        if notes is not None:
            notes.append(V1_NOTE.format(path=path))
    elif digest(tensors, meta) != meta["digest"]:
        raise CheckpointError(f"{path}: checksum mismatch: the tensors or the metadata were changed or damaged "
                              "after saving", "use an earlier checkpoint")
    if torch.device(device).type != "cpu":
        tensors = {k: v.to(device) for k, v in tensors.items()}
    return tensors, meta


def generator_tensors(tensors: dict[str, torch.Tensor], ema: bool = False) -> dict[str, torch.Tensor]:
    """G's weights from a train-state or generator checkpoint (`G_ema.` when asked and present)."""
    prefix = "G_ema." if ema else "G."
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def load_generator(path: str | Path, *, ema: bool = False, device="cpu", task=("toy", "image"),
                   command: str = "wgan sample", notes: list | None = None) -> tuple[torch.nn.Module, dict]:
    """Rebuild G from a train-state or generator checkpoint; weights land on `device` (CPU works for any)."""
    tensors, meta = load(path, task=task, command=command, notes=notes)
    if meta["model"].get("fixed_generator"):
        raise CheckpointError(f"{path}: a fixed-generator (Figure 1a) run has no trained generator to sample",
                              "sample a checkpoint of a normal `wgan toy` run")
    G, _ = models.build(meta["model"])
    weights = generator_tensors(tensors, ema=ema)
    if ema and not weights:
        raise CheckpointError(f"{path}: no EMA generator was kept in this run", "drop --ema, or train with --ema-decay")
    try:
        G.load_state_dict(weights)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the model in its metadata ({str(e).splitlines()[0]})",
                              "the checkpoint is damaged or from an incompatible wgan version") from None
    return G.to(device).eval(), meta
