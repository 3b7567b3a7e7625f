"""`wgan train --eval-metrics fid`: scores logged during training and the best generator kept (stand-in network)."""

import json
from pathlib import Path

import pytest
from standins import write_cifar10
from typer.testing import CliRunner

from wgan_cli import checkpoint
from wgan_cli.cli import app

pytestmark = pytest.mark.usefixtures("one_thread")


def scored_rows(tmp_path: Path, iters: int, metrics: str) -> tuple[list[dict], Path]:
    """A tiny cifar10 run scored every 2 iterations: its evaluation rows with a FID, and the run folder."""
    write_cifar10(tmp_path)   # --data-dir serves the training data and the default reference, cifar10:train
    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["train", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--out", str(out),
                                 "--iters", str(iters), "--dim", "8", "--batch-size", "8", "--n-val", "8",
                                 "--eval-every", "2", "--eval-metrics", metrics, "--eval-n", "16",
                                 "--device", "cpu", "--plain"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [row for row in rows if row["event"] == "eval" and "fid" in row], out


@pytest.mark.slow
def test_in_training_fid_is_logged_and_best_generator_kept(tmp_path, fake_net):
    scored, out = scored_rows(tmp_path, 4, "fid,kid")
    assert [row["step"] for row in scored] == [2, 4]
    assert all("kid" in row for row in scored)
    best = checkpoint.read_meta(out / "best.safetensors")
    assert best["kind"] == "generator" and best["extra"]["fid"] == min(row["fid"] for row in scored)


@pytest.mark.slow
def test_in_training_pr_and_dc_are_logged(tmp_path, fake_net):
    scored, _ = scored_rows(tmp_path, 2, "fid,pr,dc")
    assert len(scored) == 1
    row = scored[0]
    assert (row["pr_k"], row["dc_k"], row["pr_n"], row["dc_n"]) == (3, 5, 16, 16)


def test_in_training_scores_need_a_known_reference(tmp_path, fake_net):
    write_cifar10(tmp_path)
    r = CliRunner().invoke(app, ["train", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--out",
                                 str(tmp_path / "run"), "--iters", "2", "--dim", "8", "--batch-size", "8",
                                 "--eval-metrics", "fid", "--eval-ref", "nosuchset:train", "--device", "cpu"])
    assert r.exit_code == 2 and "nosuchset" in r.output
    assert not (tmp_path / "run").exists()   # refused before the run directory was made
