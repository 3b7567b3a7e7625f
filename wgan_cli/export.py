"""`wgan export CKPT -o OUT.onnx | OUT.pt2`: a trained generator for other runtimes (a web demo, a phone, C++).

The exported graph is the generator (api.load, eval mode) with a choice of head:
  float       the model's own output: images (B, C, H, W) in [-1, 1] (tanh) or [0, 1] (sigmoid), toy points
              (B, 2), text character probabilities (B, T, V)
  uint8       images (B, H, W, C) uint8, quantised exactly as `wgan sample` saves them (data.pixels.to_uint8)
  uint8-nchw  images (B, C, H, W) uint8: what torch-fidelity's generator input feeds its Inception network
  ids         text: character indices (B, T) int64, argmax as the paper decodes (the character map is in the
              metadata)
Inputs: `z` (B, z_dim) float32, and `classes` (B,) int64 for a conditional model; the batch B is dynamic.

Each export is checked on the spot: the written file is loaded back (onnxruntime / torch.export.load) and run on
random latents beside the PyTorch model; the differences are returned (and printed), and an export that
disagrees (float: max |diff| > FLOAT_TOLERANCE; uint8: fewer than UINT8_AGREEMENT of the bytes equal, or any
byte off by more than 1; ids: fewer than IDS_AGREEMENT equal) is refused and not written. The file records the
checkpoint's digest, the spec and the head: ONNX metadata_props["wgan"], and extra_files["wgan.json"] in a .pt2.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wgan_cli import api, outputs
from wgan_cli.version import __version__
from wgan_cli.data.pixels import to_uint8
from wgan_cli.errors import OutputError, UsageError, WganError
from wgan_cli.files import atomic_path

SUFFIXES = (".onnx", ".pt2")
HEADS = {"image": ("float", "uint8", "uint8-nchw"), "toy": ("float",), "text": ("float", "ids")}
OPSET = 18                   # onnxruntime >= 1.14 runs it; the dynamo exporter's own default
CHECK_BATCH = 16             # random latents each export is checked on (a batch size other than the traced one)
TRACE_BATCH = 2
FLOAT_TOLERANCE = 1e-3       # refusal bound; a float32 re-implementation of the same graph differs by ~1e-6
UINT8_AGREEMENT = 0.999      # a float difference of 1e-6 flips a byte only where (g+1)*127.995 sits that close
IDS_AGREEMENT = 0.99         # to an integer (or, for ids, two probabilities that close): rare, never systematic
EXPORT_HINT = "pip install 'wgan-cli[export]'   (onnx, onnxscript, onnxruntime)"


class Exported(nn.Module):
    """G with its head: (z[, classes]) -> the head's output. What both exporters trace."""

    def __init__(self, G: api.Generator, head: str):
        super().__init__()
        self.G, self.head = G.module, head
        self.pixel_range = G.spec.pixel_range

    def forward(self, z: torch.Tensor, classes: torch.Tensor | None = None) -> torch.Tensor:
        x = self.G(z, classes)
        if self.head == "uint8":
            return to_uint8(x, self.pixel_range).permute(0, 2, 3, 1)
        if self.head == "uint8-nchw":
            return to_uint8(x, self.pixel_range)
        if self.head == "ids":
            return x.argmax(-1)
        return x


@dataclass(frozen=True)
class Check:
    """How the exported file's outputs compare with the PyTorch model's on the same random latents."""
    rows: int
    max_abs_diff: float           # over every output value (for uint8 / ids: in units of one level / index)
    equal_fraction: float         # the share of output values exactly equal

    def describe(self, head: str) -> str:
        if head == "float":
            return f"max |difference| {self.max_abs_diff:.2e} on {self.rows} random latents"
        return (f"{self.equal_fraction:.4%} of values identical (max difference {self.max_abs_diff:g}) on "
                f"{self.rows} random latents")

    def passes(self, head: str) -> bool:
        if head == "float":
            return self.max_abs_diff <= FLOAT_TOLERANCE
        if head == "ids":
            return self.equal_fraction >= IDS_AGREEMENT
        return self.equal_fraction >= UINT8_AGREEMENT and self.max_abs_diff <= 1


def check_request(out: Path, head: str, spec: api.Spec) -> str:
    fmt = out.suffix.lower()
    if fmt not in SUFFIXES:
        raise UsageError(f"cannot export to {out}: unknown format {out.suffix or '(none)'}",
                         "name the output OUT.onnx (ONNX) or OUT.pt2 (torch.export)")
    if head not in HEADS[spec.task]:
        raise UsageError(f"head {head!r} does not fit {'an' if spec.task == 'image' else 'a'} {spec.task} model",
                         f"choose one of: {', '.join(HEADS[spec.task])}")
    if fmt == ".onnx":
        need_onnx()
    outputs.check_writable(out)
    return fmt


def need_onnx() -> None:
    """onnx, onnxscript (the exporter's translator) and onnxruntime (the check), the optional [export] extra."""
    missing = []
    for name in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise UsageError(f"exporting to ONNX needs {', '.join(missing)}, which is not installed", EXPORT_HINT)


def metadata(G: api.Generator, head: str, fmt: str) -> dict:
    spec = G.spec
    inputs = {"z": ["batch", spec.z_dim, "float32"]}
    if spec.n_classes:
        inputs["classes"] = ["batch", "int64", f"0..{spec.n_classes - 1}"]
    return {"format": "wgan-export", "export": fmt.lstrip("."), "head": head, "inputs": inputs,
            "prior": f"z ~ N(0, I) ({spec.prior})", "checkpoint": str(G.path.name) if G.path else None,
            "digest": spec.digest, "spec": spec.to_json(),
            "versions": {"wgan": __version__, "torch": torch.__version__}}


def example_inputs(G: api.Generator, rows: int, seed: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(rows, G.spec.z_dim, generator=gen)
    if G.spec.n_classes:
        return z, torch.randint(0, G.spec.n_classes, (rows,), generator=gen)
    return (z,)


@contextlib.contextmanager
def quiet():
    """The exporters' progress lines and warnings stay out of the command's output."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def compare(got: np.ndarray, want: np.ndarray) -> Check:
    if got.shape != want.shape:
        raise OutputError(f"the exported model returns shape {got.shape}, the model {want.shape}",
                          "this model cannot be exported faithfully; please report it")
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    return Check(len(got), float(diff.max()), float((diff == 0).mean()))


def export_onnx(module: Exported, args: tuple, tmp: Path, meta: dict) -> None:
    import onnx

    batch = torch.export.Dim("batch", min=1)
    names = ["z", "classes"][:len(args)]
    shapes = {"z": {0: batch}, "classes": {0: batch}} if len(args) == 2 else {"z": {0: batch}}
    with quiet():
        torch.onnx.export(module, args, str(tmp), dynamo=True, opset_version=OPSET, input_names=names,
                          output_names=["output"], dynamic_shapes=shapes, external_data=False)
    model = onnx.load(str(tmp))
    entry = model.metadata_props.add()
    entry.key, entry.value = "wgan", json.dumps(meta)
    model.producer_name, model.producer_version = "wgan", __version__
    onnx.save(model, str(tmp))


def run_onnx(path: Path, args: tuple) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, {name: a.numpy() for name, a in zip(names, args)})[0]


def export_pt2(module: Exported, args: tuple, tmp: Path, meta: dict) -> None:
    batch = torch.export.Dim("batch", min=1)
    shapes = {"z": {0: batch}, "classes": {0: batch}} if len(args) == 2 else {"z": {0: batch}}
    buffer = io.BytesIO()   # torch.export.save wants a name ending in .pt2; the temporary file's does not
    with quiet():
        program = torch.export.export(module, args, dynamic_shapes=shapes)
        torch.export.save(program, buffer, extra_files={"wgan.json": json.dumps(meta)})
    tmp.write_bytes(buffer.getvalue())


def run_pt2(path: Path, args: tuple) -> np.ndarray:
    """Our own file, just written (torch.export.load is never pointed at a file a user names)."""
    with quiet():
        program = torch.export.load(io.BytesIO(path.read_bytes()))
    with torch.no_grad():
        return program.module()(*args).numpy()


def export(G: api.Generator, out: str | Path, head: str | None = None, seed: int = 0) -> tuple[Path, Check]:
    """Export G with `head` to out (.onnx or .pt2), check the written file against G on CHECK_BATCH random latents
    drawn from `seed`, and only then put it in place. Returns (path, the check)."""
    out = Path(out)
    head = head or "float"
    fmt = check_request(out, head, G.spec)
    if G.device.type != "cpu":
        raise UsageError("export a generator loaded on the CPU", "load it with device='cpu'")
    module = Exported(G, head).eval()
    trace_args = example_inputs(G, TRACE_BATCH, seed + 1)
    check_args = example_inputs(G, CHECK_BATCH, seed)
    with torch.no_grad():
        want = module(*check_args).numpy()
    write, run = (export_onnx, run_onnx) if fmt == ".onnx" else (export_pt2, run_pt2)
    hint = "check free space and permissions"
    with atomic_path(out, hint) as tmp:
        try:
            write(module, trace_args, tmp, metadata(G, head, fmt))
        except (WganError, OSError):
            raise
        except Exception as e:   # the exporters raise many types for an operator they cannot translate
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise OutputError(f"cannot export {G.spec.arch} to {fmt}: {first[:300]}",
                              "try the other format (.onnx / .pt2)") from None
        check = compare(run(tmp, check_args), want)
        if not check.passes(head):
            raise OutputError(f"the exported model disagrees with the checkpoint's: {check.describe(head)}",
                              "nothing was written; try the other format (.onnx / .pt2)")
    return out, check
