"""Errors that used to escape as tracebacks: each is now one `error:` line, one `hint:` line and a documented exit
code. Damaged score inputs, non-finite reference statistics and scores, options that --figure would ignore, an
unwritable textgen -o found before training, a data-loading worker's error."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from wgan_cli import outputs
from wgan_cli.cli import app
from wgan_cli.errors import OutputError
from wgan_cli.metrics import registry

runner = CliRunner()


def one_error(r, code):
    """Exit `code`, exactly an error line and a hint line, no escaped exception."""
    assert r.exit_code == code, r.output
    shown = ("note: ", "input: ", "reference: ")   # progress and notes on stderr, before the error
    lines = [line for line in r.output.strip().splitlines() if not line.startswith(shown)]
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: "), r.output
    assert isinstance(r.exception, SystemExit) and "Traceback" not in r.output
    return lines[0]


def images(n, seed=0, size=16):
    return np.random.RandomState(seed).randint(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_score_folder_whose_first_image_is_corrupt(fake_net, tmp_path):
    folder = tmp_path / "pngs"
    folder.mkdir()
    (folder / "000.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    for i, img in enumerate(images(3)):
        Image.fromarray(img).save(folder / f"{i + 1:03d}.png")
    line = one_error(runner.invoke(app, ["score", str(folder), "--metrics", "is"]), 3)
    assert str(folder / "000.png") in line and "cannot decode" in line


def test_score_truncated_npz(fake_net, tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, images=images(8))
    path.write_bytes(path.read_bytes()[:200])
    line = one_error(runner.invoke(app, ["score", str(path), "--metrics", "is"]), 3)
    assert str(path) in line and "cannot read" in line
    path.write_bytes(b"PK\x03\x04" + b"\0" * 50)   # a zip header and nothing else
    one_error(runner.invoke(app, ["score", str(path), "--metrics", "is"]), 3)


def test_reference_statistics_with_nan_are_refused(fake_net, tmp_path):
    from wgan_cli.files import write_safetensors

    stats = tmp_path / "ref.safetensors"
    mu, sigma = torch.zeros(32, dtype=torch.float64), torch.eye(32, dtype=torch.float64)
    mu[3] = float("nan")
    meta = {"format": "wgan-stats", "version": 1, "n": 100, "source": "x", "weights": "fake0001"}
    write_safetensors(stats, {"mu": mu, "sigma": sigma}, {"wgan-stats": json.dumps(meta)})
    a = tmp_path / "a.npz"
    np.savez(a, images=images(8))
    line = one_error(runner.invoke(app, ["score", str(a), "--ref", str(stats), "--metrics", "fid"]), 3)
    assert "NaN or infinite" in line


def test_json_never_holds_nan(fake_net, tmp_path, monkeypatch):
    monkeypatch.setitem(registry.METRICS, "fid", registry.Metric(lambda g, r, o: {"fid": math.nan}, True, False))
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    np.savez(a, images=images(8, 1))
    np.savez(b, images=images(8, 2))
    r = runner.invoke(app, ["score", str(a), "--ref", str(b), "--metrics", "fid", "--json"])
    assert r.exit_code == 0, r.output

    def refuse(constant):
        raise ValueError(f"invalid JSON constant {constant}")

    out = json.loads(r.stdout, parse_constant=refuse)   # strict JSON: no NaN, no Infinity
    assert out["metrics"]["fid"] is None
    assert "note: fid not finite; reported as null" in r.output


@pytest.mark.parametrize("args,named", [
    (["--figure", "gradnorm", "--dim", "8", "--depth", "2"], "--dim, --depth"),
    (["--figure", "value-surface", "--dataset", "swissroll"], "--dataset"),
    (["--figure", "gradnorm", "--clip-value", "0.1"], "--clip-value"),
    (["--figure", "value-surface", "--penalty", "clip", "--resume", "never", "--save-every", "5"],
     "--penalty, --resume, --save-every"),
    (["--figure", "gradnorm", "--fixed-generator", "--plot-every", "3", "--log-every", "2"],
     "--fixed-generator, --plot-every, --log-every"),
])
def test_figure_refuses_the_options_it_ignores(tmp_path, args, named):
    line = one_error(runner.invoke(app, ["toy", *args, "--out", str(tmp_path / "fig")]), 2)
    assert line == f"error: --figure {args[1]} does not use {named}"
    assert not (tmp_path / "fig").exists()


def test_figure_accepts_the_options_it_uses(tmp_path):
    r = runner.invoke(app, ["toy", "--figure", "value-surface", "--clip-value", "0.1", "--lambda", "1", "--iters",
                            "3", "--lr", "1e-3", "--seed", "2", "--out", str(tmp_path), "--dry-run"])
    assert r.exit_code == 0, r.output


def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("".join(f"line {i} of text\n" for i in range(40)))
    return path


def test_textgen_output_unwritable_is_found_before_training(tmp_path, monkeypatch):
    real = outputs.tempfile.mkstemp
    locked = tmp_path / "locked"
    locked.mkdir()

    def mkstemp(*args, dir=None, **kwargs):
        if str(dir) == str(locked):   # a read-only folder (root ignores file modes, so it is simulated)
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(outputs.tempfile, "mkstemp", mkstemp)
    run = tmp_path / "run"
    r = runner.invoke(app, ["textgen", "--corpus", str(corpus(tmp_path)), "--dim", "2", "--seq-len", "8",
                            "--iters", "1000000", "--batch-size", "4", "--heldout", "4", "--out", str(run),
                            "-o", str(locked / "lm.safetensors"), "--device", "cpu", "--quiet"])
    line = one_error(r, 7)
    assert line == f"error: cannot write {locked / 'lm.safetensors'}: Permission denied"
    assert not run.exists()                         # nothing trained, nothing written


def test_an_output_that_is_a_folder_is_refused_naming_its_option(tmp_path):
    """The hint names the option that gave the path: --out for generated lines, --save-stats, -o by default."""
    run, lm = tmp_path / "run", tmp_path / "lm.safetensors"
    r = runner.invoke(app, ["textgen", "--corpus", str(corpus(tmp_path)), "--dim", "2", "--seq-len", "8",
                            "--iters", "1", "--batch-size", "4", "--heldout", "4", "--out", str(run), "-o", str(lm),
                            "--device", "cpu", "--quiet"])
    assert r.exit_code == 0, r.output
    folder = tmp_path / "lines"
    folder.mkdir()
    r = runner.invoke(app, ["textgen", "--ckpt", str(lm), "-n", "2", "--out", str(folder), "--device", "cpu"])
    assert one_error(r, 7) == f"error: cannot write {folder}: it is a folder"
    assert "hint: give --out a file path" in r.output and list(folder.iterdir()) == []
    with pytest.raises(OutputError) as refused:
        outputs.check_writable(folder, "--save-stats")
    assert refused.value.hint == "give --save-stats a file path"
    with pytest.raises(OutputError) as refused:
        outputs.check_writable(folder)
    assert refused.value.hint == "give -o a file path"


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
                    reason="root writes into read-only folders")
def test_textgen_output_in_a_read_only_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    r = runner.invoke(app, ["textgen", "--corpus", str(corpus(tmp_path)), "--dim", "2", "--seq-len", "8",
                            "--iters", "1000000", "--batch-size", "4", "--heldout", "4", "--out",
                            str(tmp_path / "run"), "-o", str(locked / "lm.safetensors"), "--device", "cpu"])
    one_error(r, 7)
    assert not (tmp_path / "run").exists()


def test_a_worker_error_is_one_line(tmp_path, one_thread):
    folder = tmp_path / "broken"
    folder.mkdir()
    for i in range(64):
        (folder / f"{i:03d}.png").write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    r = runner.invoke(app, ["train", "--dataset", f"folder:{folder}", "--workers", "2", "--arch", "dcgan",
                            "--size", "32", "--dim", "4", "--batch-size", "8", "--iters", "2",
                            "--out", str(tmp_path / "run"), "--device", "cpu", "--quiet"])
    line = one_error(r, 3)
    assert line.startswith(f"error: folder:{folder.resolve()}: no readable images (64 skipped: 64 ")
    assert "Original Traceback" not in r.output and "File \"" not in r.output
