"""`wgan prepare SRC -o OUT --size S`: a folder of images decoded once into a prepared set (data/prepared.py)."""

from __future__ import annotations

import os
from pathlib import Path

from wgan_cli.data.decode import FITS, Decoding, parse_background
from wgan_cli.data.prepared import is_prepared, list_folder, prepare, summary_text, usable_cpus
from wgan_cli.errors import UsageError
from wgan_cli.runs import StopFlag


def prepare_command(src: Path, out: Path, *, size: int, fit: str = "crop", background: str = "white",
                    channels: str = "auto", workers: int | None = None, strict: bool = False,
                    progress=None) -> dict:
    """Checks first (nothing is written before), then the preparation; returns the result printed."""
    if fit not in FITS:
        raise UsageError(f"--fit {fit}: unknown", f"choose one of: {', '.join(FITS)}")
    if channels not in ("auto", "1", "3"):
        raise UsageError(f"--channels {channels}: unknown", "choose auto, 1 or 3")
    try:
        color = parse_background(background)
    except ValueError as e:
        raise UsageError(f"--{e}", "for example --background white or --background '#202020'") from None
    out = Path(os.path.expanduser(str(out)))
    if out.exists() and not is_prepared(out):
        raise UsageError(f"-o {out}: exists and is not a prepared image set", "choose another -o, or remove it")
    source = list_folder(Path(src))
    if out.resolve() == Path(source.root) or Path(source.root) in out.resolve().parents:
        raise UsageError(f"-o {out}: inside the folder being prepared", "write the prepared set somewhere else")
    with StopFlag() as stop, stop.at_once(f"preparing {source.root}"):   # SIGTERM too removes the partial set
        prepared = prepare(source, out, Decoding(size, fit, color), workers=workers or usable_cpus(), strict=strict,
                           progress=progress, channels=channels)
    m = prepared.manifest
    rate = (m["count"] + len(m["skipped"])) / max(m["seconds"], 1e-9)
    line = (f"prepared {m['count']} images at {m['size']}x{m['size']}x{m['channels']} from {source.root} into "
            f"{out} in {m['seconds']:.1f} s ({rate:.0f} files/s)")
    if m["classes"]:
        line += f"; {len(m['classes'])} classes: {', '.join(m['classes'][:10])}{' ...' if len(m['classes']) > 10 else ''}"
    if m["skipped"]:
        line += f"\n{summary_text(m['skipped'], m['skipped_counts'])} (all of them in {out / 'manifest.json'})"
    return {"out": str(out), "count": m["count"], "size": m["size"], "channels": m["channels"],
            "skipped": m["skipped_counts"], "seconds": m["seconds"], "images_per_s": round(rate, 1),
            "digest": m["digest"], "summary": line}
