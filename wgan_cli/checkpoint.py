"""The one checkpoint format: a single .safetensors file, tensors plus JSON metadata. Nothing is ever unpickled.

Metadata (header key "wgan", a JSON string):
  format "wgan-checkpoint", version, kind ("train-state" | "generator"), task ("toy" | "image" | "text"),
  model (the spec that rebuilds G and D), train (the resolved TrainConfig), step, extra (task data such as the
  vocabulary), versions, and digest: SHA-256 over every tensor's name, dtype, shape and bytes (safetensors
  itself has no checksum).

Writes are atomic (files.atomic_path). `load_generator` rebuilds G from a checkpoint's metadata alone, for
`sample`, `score` and `textgen --ckpt`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from wgan_cli import __version__, files, models
from wgan_cli.errors import CheckpointError

FORMAT = "wgan-checkpoint"
VERSION = 1
KINDS = ("train-state", "generator")
TASKS = ("toy", "image", "text")
PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".tar", ".bin", ".joblib"}


def refuse_pickle(path: Path) -> None:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise CheckpointError(
            f"{path}: {path.suffix} files are pickles, which can run arbitrary code when loaded; wgan never "
            "unpickles a file it is given",
            "wgan checkpoints are .safetensors files written by `wgan train`, `wgan toy` or `wgan textgen`")


def digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
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
        "digest": digest(tensors),
    }
    return files.write_safetensors(path, tensors, {"wgan": json.dumps(meta)}, "check free space and permissions")


def read_meta(path: str | Path) -> dict:
    """Read and validate the header only (cheap: no tensor is loaded)."""
    path = Path(path)
    refuse_pickle(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file", "give the path of a .safetensors checkpoint")
    size = path.stat().st_size
    header = files.read_header(path)
    if header is None:
        raise CheckpointError(f"{path}: not a safetensors file, or truncated ({size} bytes)",
                              "use a .safetensors checkpoint written by wgan")
    try:
        meta = json.loads(header["__metadata__"]["wgan"])
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(f"{path}: a safetensors file, but not a wgan checkpoint (no wgan metadata)",
                              "use a checkpoint written by wgan") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a wgan checkpoint", "use a checkpoint written by wgan")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {meta.get('version')} is not supported "
                              f"(this wgan reads version {VERSION})", "upgrade wgan")
    return meta


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
         device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """Validate the header, load the tensors, verify the digest. Returns (tensors, metadata)."""
    path = Path(path)
    meta = read_meta(path)
    check(meta, path, kind=kind, task=task, command=command)
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read tensors ({e})", "the checkpoint is damaged; use an earlier one") from None
    if digest(tensors) != meta.get("digest"):
        raise CheckpointError(f"{path}: checksum mismatch: the tensor data was changed or damaged after saving",
                              "use an earlier checkpoint")
    if torch.device(device).type != "cpu":
        tensors = {k: v.to(device) for k, v in tensors.items()}
    return tensors, meta


def generator_tensors(tensors: dict[str, torch.Tensor], ema: bool = False) -> dict[str, torch.Tensor]:
    """G's weights from a train-state or generator checkpoint (`G_ema.` when asked and present)."""
    prefix = "G_ema." if ema else "G."
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def load_generator(path: str | Path, *, ema: bool = False, device="cpu", task=("toy", "image"),
                   command: str = "wgan sample") -> tuple[torch.nn.Module, dict]:
    """Rebuild G from a train-state or generator checkpoint; weights land on `device` (CPU works for any)."""
    tensors, meta = load(path, task=task, command=command)
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
