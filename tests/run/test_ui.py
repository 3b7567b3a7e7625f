"""The live display prints notes, paths and the run's name as written: a `[...]` in them is text, not Rich
markup (which would drop it, or fail on a closing tag that opens nothing)."""

import io

from rich.console import Console

from wgan_cli.events import Artifact, Note, RunFinished, RunStarted, Saved
from wgan_cli.ui import RichSink


def test_the_rich_display_prints_brackets_in_notes_paths_and_names_as_written():
    out = io.StringIO()
    sink = RichSink(Console(file=out, force_terminal=True, color_system=None, width=200))
    sink(RunStarted(step=0, total=3, description="folder:[photos]"))
    sink(Note("--tensorboard needs pip install 'wgan-cli[tensorboard]'", level="warning"))
    sink(Note("a closing tag [/bold] that opens nothing"))
    sink(Saved(step=1, path="runs/[a]/ckpt-0000001.safetensors", kind="checkpoint"))
    sink(Artifact(step=1, path="runs/[a]/samples/iter-1.png", kind="samples"))
    sink(RunFinished(step=3, elapsed=1.0))
    text = out.getvalue()
    for written in ("folder:[photos]", "pip install 'wgan-cli[tensorboard]'", "a closing tag [/bold] that opens",
                    "saved checkpoint runs/[a]/ckpt-0000001.safetensors", "samples runs/[a]/samples/iter-1.png"):
        assert written in text, (written, text)
