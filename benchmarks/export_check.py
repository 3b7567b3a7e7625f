"""Export every generator family at its default width to ONNX and .pt2 and compare the exported model with the
PyTorch one on the same latents: the table of docs/api.md.

Each family is built from a fixed seed (random weights; BatchNorm running statistics moved off (0, 1) so eval
mode matters), saved as a checkpoint, loaded with wgan_cli.load, exported with the float head (`wgan export`'s
default), then run on the CPU (onnxruntime / torch.export.load) on --rows latents drawn from seeds 0..rows-1,
beside G.module on the same latents. Reported: the max |difference| of the float outputs and, for images, the
share of bytes identical after the quantisation `wgan sample` applies (data.pixels.to_uint8); for text, the share
of argmax characters identical.

    python benchmarks/export_check.py --rows 256 --out runs/export-check
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from families import FAMILIES, generator   # benchmarks/families.py: the one table of the families
from wgan_cli import api, checkpoint, export
from wgan_cli.data.pixels import to_uint8


def make(path: Path, task: str, spec: dict) -> Path:
    G = generator(spec)
    extra = None
    if task == "text":
        extra = {"vocab": [""] + [chr(32 + i) for i in range(95)], "seq_len": 32, "pad": "`"}
    return checkpoint.save(path, {"G." + k: v for k, v in G.state_dict().items()}, kind="generator", task=task,
                           model=spec, extra=extra)


def run(fmt: str, path: Path, args) -> torch.Tensor:
    if fmt == ".onnx":
        return torch.from_numpy(export.run_onnx(path, args))
    return torch.from_numpy(export.run_pt2(path, args))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--out", type=Path, default=Path("runs/export-check"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print("| family | format | max abs diff (float) | identical (uint8 / ids) | export s |")
    print("|---|---|---|---|---|")
    for family in FAMILIES.values():
        task, name = family.task, family.label
        G = api.load(make(args.out / "g.safetensors", task, family.spec_at(tiny=False)))
        z, y = G.latents(seeds=range(args.rows))
        inputs = (z,) if y is None else (z, y)
        with torch.no_grad():
            want = G.module(*inputs)
        for fmt in (".onnx", ".pt2"):
            t = time.time()
            path, _ = export.export(G, args.out / f"g{fmt}")
            took = time.time() - t
            got = run(fmt, path, inputs)
            diff = float((got - want).abs().max())
            if task == "image":
                pixels = G.spec.pixel_range
                same = float((to_uint8(got, pixels) == to_uint8(want, pixels)).float().mean())
            elif task == "text":
                same = float((got.argmax(-1) == want.argmax(-1)).float().mean())
            else:
                same = float("nan")
            shown = "-" if same != same else f"{same:.4%}"
            print(f"| {name} | {fmt[1:]} | {diff:.2e} | {shown} | {took:.0f} |", flush=True)


if __name__ == "__main__":
    main()
