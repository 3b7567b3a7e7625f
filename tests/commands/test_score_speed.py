"""What `wgan score` says about its speed: progress lines with images/s and an ETA, and the warning before a long
CPU run computed from the rate measured on this machine."""

import io

import numpy as np
import torch
from typer.testing import CliRunner

from wgan_cli import ui
from wgan_cli.cli import app
from wgan_cli.metrics import fastpath


class Clock:
    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


def test_progress_shows_the_rate_since_the_last_line_and_the_eta(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(ui, "time", clock)
    out = io.StringIO()
    show = ui.plain_progress(out, every_s=5.0)
    show(0, 1000, "input")
    clock.now = 60.0                 # a one-time pause first (compiling): 100 images in 60 s
    show(100, 1000, "input")
    clock.now = 62.0                 # too soon for a line
    show(160, 1000, "input")
    clock.now = 70.0                 # 200 images in the 10 s since the last line: 20 images/s, 700 left: 35 s
    show(300, 1000, "input")
    clock.now = 105.0
    show(1000, 1000, "input")        # the end of the pass: always a line, no ETA
    assert out.getvalue().splitlines() == [
        "input: 100/1000 images (1.7 img/s, ETA 9:00)",
        "input: 300/1000 images (20.0 img/s, ETA 0:35)",
        "input: 1000/1000 images (20.0 img/s)",
    ]


def test_clock_formats_minutes_and_hours():
    assert (ui.clock(75), ui.clock(4000), ui.clock(0.4)) == ("1:15", "1:06:40", "0:00")


def test_the_long_run_warning_uses_the_rate_measured_here(fake_net, tiny_ckpt, tmp_path):
    path, _ = tiny_ckpt
    ref = tmp_path / "ref.npz"
    np.savez(ref, images=np.random.default_rng(0).integers(0, 256, (8, 8, 8, 1), dtype=np.uint8))
    cpu = torch.device("cpu")
    fastpath.record(fastpath.costs_path(), cpu, 1000, eager_ips=1.0, fast_ips=2.0)

    def score(*extra):
        r = CliRunner().invoke(app, ["score", str(path), "--ref", str(ref), "--n", "1201", "--metrics", "fid",
                                     "--device", "cpu", "--batch-size", "1000", *extra])
        assert r.exit_code == 0, r.output
        return r.stderr

    # 1201 images at the 2 images/s measured compiled: 10 minutes; eagerly (--no-compile) at 1 image/s: 20
    assert "take about 10 minutes (about 2 images/s measured on this machine)" in score()
    assert "take about 20 minutes (about 1 images/s measured on this machine)" in score("--no-compile")
