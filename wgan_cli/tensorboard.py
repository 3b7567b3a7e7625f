"""TensorBoard sink: engine events -> TensorBoard event files (`tensorboard --logdir RUN_DIR`).

  StepDone       every stat as the scalar `train/<name>`, plus `train/it_s`, at step = generator iterations
  Evaluated      every numeric metric as `eval/<name>`
  Artifact       "samples" PNG -> image `samples`; "figure" PNG -> image `figures/<file stem>`, or `figures` for
                 the per-iteration figures (iter-N.png, final.png: one series over the steps);
                 "text" -> the file's lines as text `samples/text` (shown verbatim, one sample a line)
  RunFinished    flush
Other events (RunStarted, Saved, Note) are not logged here.

The tensorboard package is optional (`pip install 'wgan-cli[tensorboard]'`): importing this module never needs it,
constructing the sink without it raises UsageError. Event files are append-only record logs with a checksum per
record, which TensorBoard reads up to the last whole record: the one output that is not written by atomic rename,
since it grows during the run.
"""

from __future__ import annotations

import numbers
import re
import warnings
from pathlib import Path

import numpy as np

from wgan_cli.errors import OutputError, UsageError
from wgan_cli.events import Artifact, Evaluated, RunFinished, StepDone

INSTALL_HINT = "pip install 'wgan-cli[tensorboard]'"


def require() -> None:
    """Raise the one UsageError (with the install hint) when the tensorboard package is missing; a run calls this
    before doing any work."""
    _summary_writer_class()


def _summary_writer_class():
    try:
        # torch's writer imports the tensorboard package (and refuses one older than 1.15) on import
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UsageError("--tensorboard needs the tensorboard package", INSTALL_HINT) from None
    return SummaryWriter


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _figure_tag(path: Path) -> str:
    """A figure redrawn under one name (loss-curves.png) is its own series; per-iteration figures (iter-N.png and
    the last one, final.png) form the series `figures`."""
    return "figures" if re.fullmatch(r"iter-\d+|final", path.stem) else f"figures/{path.stem}"


def _text_block(lines: list[str]) -> str:
    """TensorBoard renders text as Markdown: indent every line 4 spaces (a code block) so that samples such as
    `*_#` show verbatim, one per line."""
    return "\n".join("    " + line for line in lines)


class TensorBoardSink:
    """A sink (callable taking one event) writing to `log_dir`; call close() when done.

    `purge_step`: a resumed run passes the first step it will log; TensorBoard then drops what earlier event files
    hold from that step on (what a crashed run logged after its last checkpoint, which the resumed run logs again).
    """

    def __init__(self, log_dir: str | Path, purge_step: int | None = None):
        writer_class = _summary_writer_class()
        self.log_dir = Path(log_dir)
        try:
            self.writer = writer_class(log_dir=str(self.log_dir), purge_step=purge_step)
        except OSError as e:
            raise OutputError(f"cannot write TensorBoard logs to {self.log_dir}: {e.strerror or e}",
                              "choose a writable --out") from None

    def __call__(self, event) -> None:
        if isinstance(event, StepDone):
            for name, value in event.stats.items():
                if _is_number(value):
                    self.writer.add_scalar(f"train/{name}", float(value), event.step)
            self.writer.add_scalar("train/it_s", float(event.it_s), event.step)
        elif isinstance(event, Evaluated):
            for name, value in event.metrics.items():
                if _is_number(value):
                    self.writer.add_scalar(f"eval/{name}", float(value), event.step)
        elif isinstance(event, Artifact):
            self._artifact(event)
        elif isinstance(event, RunFinished):
            self.writer.flush()

    def _artifact(self, event: Artifact) -> None:
        path = Path(event.path)
        try:
            if event.kind in ("samples", "figure"):
                from PIL import Image

                with Image.open(path) as im:
                    pixels = np.asarray(im.convert("RGB"))                  # (H, W, 3) uint8
                tag = "samples" if event.kind == "samples" else _figure_tag(path)
                self.writer.add_image(tag, pixels, event.step, dataformats="HWC")
            elif event.kind == "text":
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
                self._add_text("samples/text", _text_block(lines), event.step)
        except OSError as e:
            # a missing or unreadable picture must not stop training: the file itself is what matters
            warnings.warn(f"TensorBoard: skipped {event.kind} {path}: {e.strerror or e}", stacklevel=2)

    def _add_text(self, tag: str, text: str, step: int) -> None:
        # SummaryWriter.add_text would name the tag `<tag>/text_summary`; write the same summary under `tag` itself
        from torch.utils.tensorboard.summary import text as text_summary

        summary = text_summary(tag, text)
        summary.value[0].tag = tag
        self.writer._get_file_writer().add_summary(summary, step)

    def close(self) -> None:
        self.writer.close()
