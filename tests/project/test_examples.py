"""The sweep scripts of examples/ (random_architectures.sh, convergence.sh, overfitting.sh): their flags exist,
and their control flow (resume, skip finished runs, diverged runs, the closing report) holds, checked against a
stand-in `wgan` that records its arguments and writes the final checkpoint a real run would."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer

from wgan_cli.cli import app
from paths import ROOT

EXAMPLES = ROOT / "examples"
SCRIPTS = ["random_architectures.sh", "convergence.sh", "overfitting.sh"]

STANDIN = r"""#!/usr/bin/env bash
# records the call; `train` makes --out and its final checkpoint, or fails with $FAIL_CODE for --out $FAIL_OUT
echo "$*" >> "$CALLS"
[[ $1 == train ]] || exit 0
while (($#)); do
    case $1 in --out) out=$2 ;; --iters) iters=$2 ;; esac
    shift
done
mkdir -p "$out"
if [[ $out == "${FAIL_OUT:-none}" ]]; then exit "$FAIL_CODE"; fi
touch "$out/$(printf "ckpt-%07d.safetensors" "$iters")"
"""


def options_of(command: str) -> set[str]:
    cmd = typer.main.get_command(app).commands[command]
    return {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts) if opt.startswith("--")}


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_parse_and_use_existing_options(script):
    text = (EXAMPLES / script).read_text()
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
    subprocess.run(["bash", "-n", str(EXAMPLES / script)], check=True)
    # every --option of the `wgan train` / `wgan report` commands (continued lines joined, values of METHODS too)
    joined = text.replace("\\\n", " ")
    for command in ("train", "report"):
        known = options_of(command)
        lines = [line for line in joined.splitlines()
                 if f"wgan {command} " in line and not line.lstrip().startswith("#")]
        if command == "train":
            lines += re.findall(r'\]="([^"]*)"', joined)   # the METHODS table of convergence.sh
        assert lines, (script, command)
        used = {tok for line in lines for tok in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", line)}
        assert used <= known, (script, command, used - known)


@pytest.fixture
def standin(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "wgan").write_text(STANDIN)
    (bin_dir / "wgan").chmod(0o755)
    calls = tmp_path / "calls.log"

    def run(script, *args, **env):
        calls.write_text("")
        full = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls), **env}
        r = subprocess.run(["bash", str(EXAMPLES / script), *args], cwd=tmp_path, env=full, capture_output=True,
                           text=True)
        return r, [shlex.split(line) for line in calls.read_text().splitlines()]

    return run


def value(call: list[str], flag: str) -> str:
    return call[call.index(flag) + 1]


def test_random_architectures_sweep_resumes_and_skips_diverged_runs(standin, tmp_path):
    env = dict(ARCHS="2", ITERS="40", METHODS="gp gan", METRIC="fid", THRESHOLDS="100 200",
               FAIL_OUT="runs/random-architectures/arch001-gp", FAIL_CODE="6")
    r, calls = standin("random_architectures.sh", "--n-val", "8", **env)
    assert r.returncode == 0, r.stderr
    trains = [c for c in calls if c[0] == "train"]
    assert [value(c, "--out") for c in trains] == [f"runs/random-architectures/arch00{k}-{m}"
                                                   for k in (0, 1) for m in ("gp", "gan")]
    assert [value(c, "--arch-seed") for c in trains] == ["0", "0", "1", "1"]
    assert all(value(c, "--arch") == "random" and value(c, "--size") == "32" and c[-2:] == ["--n-val", "8"]
               for c in trains)
    assert value(trains[0], "--penalty") == "gp" and value(trains[1], "--objective") == "gan"
    assert all(value(c, "--eval-every") == "40" and value(c, "--eval-metrics") == "fid" for c in trains)
    assert (tmp_path / "runs/random-architectures/arch001-gp/DIVERGED").is_file()
    report = calls[-1]
    assert report[0] == "report" and value(report, "--table2") == "fid" and "--below" in report
    assert report[report.index("--thresholds") + 1: report.index("--thresholds") + 3] == ["100", "200"]
    assert sorted(report[1:5]) == sorted(str(p.relative_to(tmp_path)) for p in
                                         (tmp_path / "runs/random-architectures").iterdir())
    r, calls = standin("random_architectures.sh", **env)   # again: everything is done (or diverged)
    assert r.returncode == 0 and [c[0] for c in calls] == ["report"]
    assert r.stdout.count("skipping") == 4


def test_random_architectures_sweep_stops_on_an_interrupt(standin):
    r, calls = standin("random_architectures.sh", ARCHS="2", ITERS="4", METHODS="gan",
                       FAIL_OUT="runs/random-architectures/arch000-gan", FAIL_CODE="130")
    assert r.returncode == 130 and [c[0] for c in calls] == ["train"]   # not marked: a rerun resumes it


def test_convergence_runs_the_four_methods_then_the_report(standin, tmp_path):
    r, calls = standin("convergence.sh", "fashion-mnist", ITERS="40", EVAL_EVERY="20", EVAL_METRICS="fid")
    assert r.returncode == 0, r.stderr
    trains = {Path(value(c, "--out")).name: c for c in calls if c[0] == "train"}
    assert list(trains) == ["wgan-clip", "wgan-gp-rmsprop", "wgan-gp-adam", "dcgan"]
    clip, gp_rms, gp_adam, dcgan = trains.values()
    assert value(clip, "--penalty") == "clip" and value(clip, "--critic-norm") == "batchnorm"
    assert (value(gp_rms, "--optimizer"), value(gp_rms, "--lr")) == ("rmsprop", "5e-5")
    assert (value(gp_adam, "--optimizer"), value(gp_adam, "--lr")) == ("adam", "1e-4")
    assert gp_adam[gp_adam.index("--betas") + 1: gp_adam.index("--betas") + 3] == ["0.5", "0.9"]
    assert value(dcgan, "--objective") == "gan" and value(dcgan, "--critic-norm") == "batchnorm"
    assert all(value(c, "--dataset") == "fashion-mnist" and value(c, "--eval-every") == "20"
               for c in trains.values())
    assert calls[-1][0] == "report" and value(calls[-1], "-o") == "runs/convergence-fashion-mnist-report"
    r, calls = standin("convergence.sh", "fashion-mnist", ITERS="40")
    assert [c[0] for c in calls] == ["report"]


def test_overfitting_trains_gp_and_clip_on_a_subset(standin):
    r, calls = standin("overfitting.sh", ITERS="10", EVAL_EVERY="5")
    assert r.returncode == 0, r.stderr
    trains = [c for c in calls if c[0] == "train"]
    assert [value(c, "--penalty") for c in trains] == ["gp", "clip"]
    assert all(value(c, "--train-images") == "1000" and value(c, "--dim") == "128" for c in trains)
    assert calls[-1][:3] == ["report", "runs/overfitting-mnist/gp", "runs/overfitting-mnist/clip"]


@pytest.mark.slow
def test_last_grids_takes_each_runs_newest_grid_and_its_first_cells(tmp_path):
    """examples/last_grids.py: the newest grid of each run (not an older one), the first side x side cells of it,
    one figure of all runs; a run without grids is refused with one error line."""
    import importlib.util

    from PIL import Image

    spec = importlib.util.spec_from_file_location("last_grids", EXAMPLES / "last_grids.py")
    last_grids = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(last_grids)
    for name in ("arch000-gp", "arch000-gan", "arch001-gp"):
        samples = tmp_path / "sweep" / name / "samples"
        samples.mkdir(parents=True)
        Image.new("L", (64, 64), 0).save(samples / "iter-0000010.png")
        newest = np.arange(64 * 64, dtype=np.uint8).reshape(64, 64)
        Image.fromarray(newest).save(samples / "iter-0000020.png")
    grid = last_grids.last_grid(tmp_path / "sweep" / "arch000-gp")
    assert np.array_equal(grid, newest)
    assert np.array_equal(last_grids.corner(grid, side=2, per_row=8), newest[:16, :16])   # 8 px cells

    out = tmp_path / "final.png"
    runs = sorted(str(p) for p in (tmp_path / "sweep").iterdir())
    script = [sys.executable, str(EXAMPLES / "last_grids.py")]
    done = subprocess.run([*script, *runs, "-o", str(out), "--side", "2", "--rows", "gp", "gan"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "3 runs, the first 4 samples" in done.stdout and Image.open(out).size[0] > 0
    (tmp_path / "sweep" / "arch002-gp").mkdir()
    refused = subprocess.run([*script, str(tmp_path / "sweep" / "arch002-gp"), "-o", str(out)],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "holds no sample grid" in refused.stderr
