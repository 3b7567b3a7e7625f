"""A full disk or a failing write: exit code 7 with the path, no truncated file, no temporary file left, the
previous good files (checkpoints, outputs) intact. Injected ENOSPC at the lowest write of each writer, and a real
small tmpfs (skipped where mounting is not permitted)."""

import errno
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors import SafetensorError
from checkpoints import save_generator
from typer.testing import CliRunner

from wgan_cli import checkpoint, files, outputs
from wgan_cli.cli import app
from paths import ROOT

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")
ENOSPC = "No space left on device"


def no_tmp_left(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def partial_then_enospc(path):
    with open(path, "ab") as f:
        f.write(b"\0" * 100)   # what a full disk leaves: a cut file
    raise OSError(errno.ENOSPC, ENOSPC)


# ---- training: a checkpoint save fails ------------------------------------------------------------------------
@pytest.mark.slow
def test_enospc_during_a_checkpoint_save_stops_with_7_and_keeps_the_previous_checkpoints(tmp_path, monkeypatch):
    out = tmp_path / "run"
    real_save = files.save_file
    calls = {"n": 0}

    def save_file(tensors, filename, metadata=None):
        calls["n"] += 1
        if calls["n"] <= 2:                  # step 2: the train state and the generator are saved
            return real_save(tensors, filename, metadata=metadata)
        with open(filename, "wb") as f:      # step 4: half a file, then safetensors' own error
            f.write(b"\0" * 64)
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, '
                              'message: "No space left on device" })')

    monkeypatch.setattr(files, "save_file", save_file)
    r = runner.invoke(app, ["toy", "--iters", "6", "--save-every", "2", "--dim", "8", "--depth", "1",
                            "--batch-size", "8", "--n-critic", "1", "--plot-every", "100", "--out", str(out),
                            "--device", "cpu", "--quiet"])
    assert r.exit_code == 7, r.output
    lines = r.output.strip().splitlines()
    assert lines[0] == f"error: cannot write {out / 'ckpt-0000004.safetensors'}: {ENOSPC}", r.output
    assert lines[1].startswith("hint: ") and isinstance(r.exception, SystemExit)
    monkeypatch.undo()
    assert sorted(p.name for p in out.glob("*.safetensors")) == ["ckpt-0000002.safetensors", "generator.safetensors"]
    assert checkpoint.load(out / "ckpt-0000002.safetensors")[1]["step"] == 2
    assert checkpoint.load(out / "generator.safetensors")[1]["step"] == 2
    assert no_tmp_left(out)
    r = runner.invoke(app, ["toy", "--iters", "6", "--save-every", "2", "--dim", "8", "--depth", "1",
                            "--batch-size", "8", "--n-critic", "1", "--plot-every", "100", "--out", str(out),
                            "--device", "cpu", "--quiet"])
    assert r.exit_code == 0, r.output       # space again: the same command resumes from iteration 2


class FullFile:
    """A file object on a full disk."""

    def write(self, text):
        raise OSError(errno.ENOSPC, ENOSPC)

    def flush(self):
        pass

    def close(self):
        pass


def test_enospc_in_metrics_jsonl_is_exit_7(tmp_path, monkeypatch):
    from wgan_cli import ui

    real_init = ui.JsonlSink.__init__

    def init(self, path):
        real_init(self, path)
        self.file.close()
        self.file = FullFile()

    monkeypatch.setattr(ui.JsonlSink, "__init__", init)
    out = tmp_path / "run"
    r = runner.invoke(app, ["toy", "--iters", "2", "--dim", "8", "--depth", "1", "--batch-size", "8",
                            "--out", str(out), "--device", "cpu", "--quiet"])
    assert r.exit_code == 7, r.output
    assert r.output.startswith(f"error: cannot write {out / 'metrics.jsonl'}: {ENOSPC}")
    assert isinstance(r.exception, SystemExit)


# ---- sample: every output type ------------------------------------------------------------------------------
IMAGE_SPEC = dict(arch="dcgan", dim=4, size=28, channels=1, z_dim=128, critic_norm="none", variant="default")
TOY_SPEC = {"arch": "toy-mlp", "dim": 4, "depth": 1, "z_dim": 2, "data_dim": 2}


def break_writer(monkeypatch, kind):
    """ENOSPC in the library call that writes the bytes, after part of the file was written."""
    if kind in ("png", "dir"):
        monkeypatch.setattr(Image.Image, "save", lambda self, fp, *a, **k: partial_then_enospc(fp))
    elif kind in ("npz", "npy"):   # arrays are streamed (outputs.array_stream): the disk fills after the first row
        real = outputs.array_stream

        @contextmanager
        def broken(*args, **kwargs):
            with real(*args, **kwargs) as write:
                def write_then_fail(name, rows):
                    write(name, rows[:1])
                    raise OSError(errno.ENOSPC, ENOSPC)
                yield write_then_fail

        monkeypatch.setattr(outputs, "array_stream", broken)
    elif kind == "csv":
        monkeypatch.setattr(np, "savetxt", lambda f, a, **k: (f.write(b"x,y\n0.1,"), partial_then_enospc(f.name)))


@pytest.mark.parametrize("task,name,kind", [("image", "grid.png", "png"), ("image", "samples.npz", "npz"),
                                            ("toy", "points.csv", "csv"), ("toy", "points.npy", "npy"),
                                            ("image", "pngs/", "dir")])
def test_enospc_in_sample_keeps_the_previous_output(tmp_path, monkeypatch, task, name, kind):
    ckpt = save_generator(tmp_path / "g.safetensors", IMAGE_SPEC if task == "image" else TOY_SPEC)
    out = tmp_path / "out" / name
    r = runner.invoke(app, ["sample", str(ckpt), "-n", "4", "-o", str(out)])      # a good output first
    assert r.exit_code == 0, r.output
    target = out / "000000.png" if kind == "dir" else out
    good = target.read_bytes()
    break_writer(monkeypatch, kind)
    r = runner.invoke(app, ["sample", str(ckpt), "-n", "4", "--seed", "1", "-o", str(out)])
    assert r.exit_code == 7, r.output
    assert r.output.startswith(f"error: cannot write {target}: {ENOSPC}"), r.output
    assert isinstance(r.exception, SystemExit)
    assert target.read_bytes() == good                  # the good file is untouched
    assert no_tmp_left(tmp_path / "out")


# ---- textgen: generated lines and the -o checkpoint ----------------------------------------------------------
def text_ckpt(path):
    return save_generator(path, {"arch": "text-resnet", "vocab_size": 4, "seq_len": 4, "dim": 2, "z_dim": 3, "n_blocks": 1})


def test_enospc_in_textgen_lines_keeps_the_previous_file(tmp_path, monkeypatch):
    ckpt = text_ckpt(tmp_path / "lm.safetensors")
    out = tmp_path / "lines.txt"
    out.write_text("good lines\n")
    real = Path.write_bytes

    def write_bytes(self, data):
        if self.name.startswith(".lines.txt."):
            real(self, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, ENOSPC)
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    r = runner.invoke(app, ["textgen", "--ckpt", str(ckpt), "-n", "5", "--out", str(out)])
    assert r.exit_code == 7 and r.output.startswith(f"error: cannot write {out}: {ENOSPC}"), r.output
    assert out.read_text() == "good lines\n" and no_tmp_left(tmp_path)


def test_enospc_in_the_textgen_output_checkpoint(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"line {i} of text\n" for i in range(40)))
    lm = tmp_path / "lm.safetensors"
    args = ["textgen", "--corpus", str(corpus), "--dim", "2", "--seq-len", "8", "--batch-size", "4", "--n-critic", "1",
            "--heldout", "4", "--eval-every", "100", "-o", str(lm), "--device", "cpu", "--quiet"]
    # a previous good -o file, of the same model and data (only such a checkpoint may be replaced)
    assert runner.invoke(app, [*args, "--iters", "1", "--out", str(tmp_path / "first")]).exit_code == 0
    good = lm.read_bytes()
    real_save = files.save_file

    def save_file(tensors, filename, metadata=None):
        if Path(filename).name.startswith(".lm.safetensors."):
            Path(filename).write_bytes(b"\0" * 10)
            raise OSError(errno.ENOSPC, ENOSPC)
        return real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(files, "save_file", save_file)
    r = runner.invoke(app, [*args, "--iters", "2", "--out", str(tmp_path / "run")])
    assert r.exit_code == 7 and f"cannot write {lm}: {ENOSPC}" in r.output, r.output
    assert lm.read_bytes() == good and no_tmp_left(tmp_path)
    assert checkpoint.load(tmp_path / "run" / "ckpt-0000002.safetensors")[1]["step"] == 2   # the run's own state


# ---- a real full disk ------------------------------------------------------------------------------------------
TMPFS_SCRIPT = r"""
set -u
mount -t tmpfs -o size=300k wgan-test "$MNT" || exit 97
cd "$ROOT"
TOY="toy --dim 64 --depth 2 --batch-size 16 --n-critic 1 --iters 100000 --save-every 10 --log-every 50"
TOY="$TOY --plot-every 1000000 --device cpu --quiet"
"$PY" -m wgan_cli $TOY --out "$MNT/run" 2> "$LOGS/run.err"; echo "run_rc=$?"
ls -a "$MNT/run" | sed 's/^/file=/'
for f in "$MNT"/run/*.safetensors; do
  "$PY" -c "import sys; from wgan_cli import checkpoint as c; print('loads', c.load(sys.argv[1])[1]['step'])" "$f" \
    && echo "loaded $(basename "$f")" || echo "broken $f"
done
cat /dev/zero > "$MNT/filler" 2>/dev/null
"$PY" -m wgan_cli $TOY --out "$MNT/second" 2> "$LOGS/second.err"; echo "second_rc=$?"
"""


@pytest.mark.slow
def test_a_real_full_tmpfs(tmp_path):
    unshare = shutil.which("unshare")
    if unshare is None or sys.platform != "linux":
        pytest.skip("needs Linux and unshare(1) to mount a private tmpfs")
    probe = subprocess.run([unshare, "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("mount namespaces are not permitted here")
    mnt, logs = tmp_path / "mnt", tmp_path / "logs"
    mnt.mkdir()
    logs.mkdir()
    env = {**os.environ, "MNT": str(mnt), "ROOT": str(ROOT), "PY": sys.executable, "LOGS": str(logs),
           "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([unshare, "-rm", "sh", "-c", TMPFS_SCRIPT], env=env, capture_output=True, text=True,
                       timeout=600)
    if r.returncode == 97:
        pytest.skip("mounting a tmpfs is not permitted here")
    report = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line and " " not in line[:12])
    files_left = [line[5:] for line in r.stdout.splitlines() if line.startswith("file=")]
    run_err = (logs / "run.err").read_text()
    assert report.get("run_rc") == "7", (r.stdout, run_err)
    err_lines = run_err.strip().splitlines()
    assert err_lines[0].startswith(f"error: cannot write {mnt}/run/") and err_lines[0].endswith(ENOSPC), run_err
    assert "Traceback" not in run_err and len(err_lines) == 2
    assert not [f for f in files_left if f.endswith(".tmp")], files_left
    loaded = [line for line in r.stdout.splitlines() if line.startswith("loaded ")]
    assert "broken" not in r.stdout and any("ckpt-" in line for line in loaded), r.stdout
    print(f"full tmpfs: stopped with exit 7 ({err_lines[0]}); still loading: {len(loaded)} files")
    second = (logs / "second.err").read_text()
    assert report.get("second_rc") == "7", second
    assert second.startswith("error: ") and "Traceback" not in second and len(second.strip().splitlines()) == 2
