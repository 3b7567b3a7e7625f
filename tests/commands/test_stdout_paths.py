"""A path whose name is not UTF-8 is printed as its own bytes, also when stdout is strict UTF-8
(PYTHONIOENCODING=utf-8, a UTF-8 locale): the last line of a finished command used to raise UnicodeEncodeError
after all the work was done (exit code 1). Such a checkpoint is also read back (safetensors' own reader takes
UTF-8 paths only, and called the file damaged)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def wgan(*args: bytes, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable.encode(), b"-m", b"wgan_cli", *args], cwd=cwd, env=env,
                          capture_output=True, timeout=300)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems refuse names that are not UTF-8")
def test_training_and_sampling_print_non_utf8_paths_as_their_bytes(tmp_path):
    run = b"run-\xff"
    r = wgan(b"toy", b"--iters", b"1", b"--dim", b"8", b"--batch-size", b"16", b"--device", b"cpu", b"--quiet",
             b"--out", run, cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert b"run directory: " + run + b"  (generator: " + run + b"/generator.safetensors)" in r.stdout
    points = b"points-\xff\xe9.csv"
    r = wgan(b"sample", run + b"/generator.safetensors", b"-n", b"5", b"-o", points, cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert r.stdout == b"wrote 5 points to " + points + b"\n"
    assert os.path.isfile(os.path.join(os.fsencode(tmp_path), points))


def test_other_characters_a_stream_cannot_encode_become_escapes():
    import io

    from wgan_cli.command import keep_path_bytes

    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="strict")
    keep_path_bytes(stream)
    stream.write("a-\udcff-\u00e9\n")   # a byte of a non-UTF-8 name, then a character ASCII lacks
    stream.flush()
    assert stream.buffer.getvalue() == b"a-\xff-\\xe9\n"
