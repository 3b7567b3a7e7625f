"""`wgan prepare` and prepared sets on the command line: train and score read them; a folder is identified on
resume by its resolved path and its contents."""

import json

import numpy as np
from PIL import Image
from standins import write_pngs
from typer.testing import CliRunner

from wgan_cli.cli import app
from wgan_cli.data.prepared import open_prepared

runner = CliRunner()
TINY = ["--arch", "dcgan", "--size", "32", "--dim", "2", "--batch-size", "4", "--n-critic", "1", "--device", "cpu",
        "--workers", "0", "--sample-every", "1000", "--quiet"]


def test_prepare_writes_a_set_and_summarises_what_it_skipped(tmp_path):
    write_pngs(tmp_path / "pics" / "cats", 5, size=40)
    write_pngs(tmp_path / "pics" / "dogs", 5, size=40)
    (tmp_path / "pics" / "dogs" / "notes.png").write_text("hello")
    r = runner.invoke(app, ["prepare", str(tmp_path / "pics"), "-o", str(tmp_path / "set"), "--size", "16",
                            "--workers", "2", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "prepared 10 images at 16x16x3" in r.output and "2 classes: cats, dogs" in r.output
    assert "1 skipped: 1 not an image; 'dogs/notes.png' (not an image)" in r.output
    s = open_prepared(tmp_path / "set")
    assert s.images.shape == (10, 16, 16, 3) and s.labels.tolist() == [0] * 5 + [1] * 5
    r = runner.invoke(app, ["prepare", str(tmp_path / "pics"), "-o", str(tmp_path / "set"), "--size", "16",
                            "--strict", "--quiet"])
    assert r.exit_code == 3 and "notes.png: not an image" in r.output, r.output
    assert open_prepared(tmp_path / "set").digest == s.digest   # the refused run left the set as it was


def test_prepare_refuses_to_write_over_other_files(tmp_path):
    write_pngs(tmp_path / "pics", 3, size=40)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep")
    r = runner.invoke(app, ["prepare", str(tmp_path / "pics"), "-o", str(tmp_path / "taken"), "--size", "16"])
    assert r.exit_code == 2 and "not a prepared image set" in r.output
    assert (tmp_path / "taken" / "mine.txt").read_text() == "keep"


def test_train_and_score_read_a_prepared_set(tmp_path, fake_net):
    write_pngs(tmp_path / "pics", 40, size=40)
    assert runner.invoke(app, ["prepare", str(tmp_path / "pics"), "-o", str(tmp_path / "set"), "--size", "32",
                               "--quiet"]).exit_code == 0
    r = runner.invoke(app, ["train", "--dataset", str(tmp_path / "set"), *TINY, "--iters", "1",
                            "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["score", str(tmp_path / "set"), "--ref", str(tmp_path / "set"), "--metrics", "fid",
                            "--json", "--quiet", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.output.strip().splitlines()[-1])
    assert result["n"] == result["ref_n"] == 40
    assert abs(result["metrics"]["fid"]) < 1e-3   # a set against itself: 0 up to the float32 square root


def test_a_folder_resumes_however_it_is_spelled_and_other_images_are_refused(tmp_path, monkeypatch):
    write_pngs(tmp_path / "a" / "data" / "good", 12, size=32, seed=1)
    write_pngs(tmp_path / "b" / "data" / "good", 12, size=32, seed=2)
    out = str(tmp_path / "run")
    monkeypatch.chdir(tmp_path / "a")
    r = runner.invoke(app, ["train", "--dataset", "folder:data/good", *TINY, "--iters", "1", "--out", out])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["train", "--dataset", "folder:./data/good/", *TINY, "--iters", "2", "--out", out])
    assert r.exit_code == 0 and '"step": 2' in r.output, r.output   # the same folder: resumed
    monkeypatch.chdir(tmp_path / "b")
    r = runner.invoke(app, ["train", "--dataset", "folder:data/good", *TINY, "--iters", "3", "--out", out])
    assert r.exit_code == 4 and "different data" in r.output, r.output   # other images behind the same spelling


def test_two_hundred_images_train_with_a_validation_curve(tmp_path):
    d = tmp_path / "pics"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(200):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(d / f"{i:03d}.png")
    r = runner.invoke(app, ["train", "--dataset", f"folder:{d}", *TINY, "--iters", "2", "--eval-every", "1",
                            "--n-val", "8", "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    curve = [r["val_w_dist"] for r in rows if r.get("event") == "eval" and "val_w_dist" in r]
    assert len(curve) == 2 and all(np.isfinite(curve))
    options = json.loads((tmp_path / "run" / "options.json").read_text())
    assert options["data"]["n_val"] == 10


def test_sigterm_while_preparing_exits_143_and_leaves_no_partial_set(tmp_path, sigterm_at_third_image):
    import signal

    write_pngs(tmp_path / "pics", 10, size=32)
    decoded = sigterm_at_third_image
    handler = signal.getsignal(signal.SIGTERM)
    r = runner.invoke(app, ["prepare", str(tmp_path / "pics"), "-o", str(tmp_path / "set"), "--size", "16",
                            "--workers", "1", "--quiet"])
    assert r.exit_code == 143, r.output
    assert f"SIGTERM while preparing {(tmp_path / 'pics').resolve()}: stopped, nothing written" in r.output
    assert len(decoded) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pics"]   # no set, no .set.PID.partial beside it
    assert signal.getsignal(signal.SIGTERM) is handler
