"""An explicit --resume PATH is loaded, or refused, before the run directory is created: a missing, damaged or
wrong-kind checkpoint leaves no half-made run directory (.lock, an empty metrics.jsonl) behind."""

import json

import pytest
from typer.testing import CliRunner

from wgan_cli.cli import app

TOY = ["toy", "--dim", "8", "--batch-size", "16", "--device", "cpu", "--quiet", "--log-every", "1"]


def toy(*args):
    return CliRunner().invoke(app, [*TOY, *map(str, args)])


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("first") / "run"
    r = toy("--iters", 2, "--out", out)
    assert r.exit_code == 0, r.output
    return out


@pytest.mark.slow
@pytest.mark.parametrize("what", ["missing", "truncated", "generator"])
def test_a_refused_resume_path_creates_nothing(first_run, tmp_path, what):
    ckpt = {"missing": tmp_path / "nothere.safetensors", "truncated": tmp_path / "cut.safetensors",
            "generator": first_run / "generator.safetensors"}[what]
    if what == "truncated":
        ckpt.write_bytes((first_run / "ckpt-0000002.safetensors").read_bytes()[:2000])
    out = tmp_path / "new-run"
    r = toy("--iters", 3, "--out", out, "--resume", ckpt)
    assert r.exit_code == 4, r.output
    assert r.stderr.startswith(f"error: {ckpt}")
    assert not out.exists()


@pytest.mark.slow
def test_an_accepted_resume_path_continues_in_a_new_run_directory(first_run, tmp_path):
    out = tmp_path / "new-run"
    r = toy("--iters", 3, "--out", out, "--resume", first_run / "ckpt-0000002.safetensors")
    assert r.exit_code == 0, r.output
    steps = [row["step"] for row in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
             if row.get("event") == "step"]
    assert steps == [3]   # iterations 1 and 2 came from the checkpoint
    assert (out / "ckpt-0000003.safetensors").is_file()
