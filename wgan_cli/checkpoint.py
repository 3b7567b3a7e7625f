"""The one checkpoint format: a single .safetensors file, tensors plus JSON metadata. Nothing is ever unpickled.

Metadata (header key "wgan", a JSON string):
  format "wgan-checkpoint", version, kind ("train-state" | "generator"), task ("toy" | "image" | "text"),
  model (the spec that rebuilds G and D), train (the resolved TrainConfig), step, extra (task data such as the
  vocabulary), versions, and digest: SHA-256 over every tensor's name, dtype, shape and bytes (safetensors
  itself has no checksum).

Writes are atomic: temp file in the same folder, flush + fsync, os.replace, fsync the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from pathlib import Path

import torch

from wgan_cli import __version__
from wgan_cli.errors import CheckpointError, OutputError

FORMAT = "wgan-checkpoint"
VERSION = 1
KINDS = ("train-state", "generator")
TASKS = ("toy", "image", "text")
MAX_HEADER_BYTES = 100 * 1024 * 1024
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
    from safetensors.torch import save_file

    assert kind in KINDS and task in TASKS, (kind, task)
    path = Path(path)
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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise OutputError(f"cannot write checkpoint {path}: {e.strerror}", "choose a writable --out") from None
    try:
        save_file(tensors, tmp, metadata={"wgan": json.dumps(meta)})
        with open(tmp, "rb+") as f:
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        raise OutputError(f"cannot write checkpoint {path}: {e.strerror}", "check free space and permissions") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _fsync_dir(folder: Path) -> None:
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


def read_meta(path: str | Path) -> dict:
    """Read and validate the header only (cheap: no tensor is loaded)."""
    path = Path(path)
    refuse_pickle(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file", "give the path of a .safetensors checkpoint")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: file is truncated ({size} bytes)", "the checkpoint is damaged; use an earlier one")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES or n + 8 > size:
            raise CheckpointError(f"{path}: not a safetensors file, or truncated (header of {n} bytes in a "
                                  f"{size}-byte file)", "use a .safetensors checkpoint written by wgan")
        try:
            header = json.loads(f.read(n))
            meta = json.loads(header["__metadata__"]["wgan"])
        except (ValueError, KeyError, TypeError):
            raise CheckpointError(f"{path}: a safetensors file, but not a wgan checkpoint (no wgan metadata)",
                                  "use a checkpoint written by wgan") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a wgan checkpoint", "use a checkpoint written by wgan")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {meta.get('version')} is not supported "
                              f"(this wgan reads version {VERSION})", "upgrade wgan")
    data_end = max((e["data_offsets"][1] for k, e in header.items() if k != "__metadata__"), default=0)
    if 8 + n + data_end > size:
        raise CheckpointError(f"{path}: file is truncated ({size} bytes, header promises {8 + n + data_end})",
                              "the checkpoint is damaged; use an earlier one")
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
    from safetensors import SafetensorError
    from safetensors.torch import load_file

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
