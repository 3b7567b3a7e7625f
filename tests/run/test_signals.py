"""Signals to the whole process group (docker stop, systemd, Slurm, `timeout`): with DataLoader workers, the run
saves at the iteration boundary and exits 143 (130 for SIGINT), and resuming gives bit-identical weights."""

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np
import pytest
import torch
from PIL import Image

from wgan_cli import checkpoint
from paths import ROOT, TESTS

ITERS = 80


def env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "WGAN_CACHE_DIR": os.path.join(tempfile.gettempdir(), "wgan-test-cache")}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("pictures")
    rng = np.random.RandomState(0)
    for i in range(48):
        Image.fromarray(rng.randint(0, 256, (32, 32, 3), dtype=np.uint8)).save(d / f"{i:03d}.png")
    return d


def command(folder, out):
    return [sys.executable, "-m", "wgan_cli", "train", "--dataset", f"folder:{folder}", "--workers", "2",
            "--memory-budget", "0",   # read from the memory map by DataLoader workers, whose signals are tested
            "--arch", "dcgan", "--size", "32", "--dim", "4", "--batch-size", "8", "--n-critic", "1",
            "--iters", str(ITERS), "--log-every", "2", "--sample-every", "1000", "--eval-every", "1000",
            "--device", "cpu", "--plain", "--out", str(out)]


def run(cmd, timeout=300):
    return subprocess.run(cmd, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=timeout)


def stop_group_after_progress(cmd, out, signum, min_step=4):
    """Start `cmd` in its own process group, wait until it logged `min_step`, signal the whole group."""
    p = subprocess.Popen(cmd, cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 240
    try:
        while time.time() < deadline and p.poll() is None:
            if metrics.exists() and any(f'"step": {s},' in metrics.read_text() for s in range(min_step, ITERS)):
                break
            time.sleep(0.05)
        assert p.poll() is None, "the run ended before it could be signalled"
        os.killpg(p.pid, signum)                      # every process of the group: main and workers
        stdout, stderr = p.communicate(timeout=240)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
    return p.returncode, stdout, stderr


@pytest.mark.slow
def test_sigterm_to_the_process_group_saves_exits_143_and_resumes_bit_identically(tmp_path, folder):
    straight = run(command(folder, tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr
    out = tmp_path / "stopped"
    code, _, stderr = stop_group_after_progress(command(folder, out), out, signal.SIGTERM)
    assert code == 143, stderr
    assert "Traceback" not in stderr and "error: interrupted at iteration" in stderr
    saved = checkpoint.read_meta(next(out.glob("ckpt-*.safetensors")))["step"]
    assert 4 <= saved < ITERS, saved
    print(f"SIGTERM to the process group: saved at iteration {saved} of {ITERS}, exit {code}")
    resumed = run(command(folder, out))                     # the same command again
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from {out / f'ckpt-{saved:07d}.safetensors'} at iteration {saved}" in resumed.stderr
    a, _ = checkpoint.load(tmp_path / "straight" / f"ckpt-{ITERS:07d}.safetensors")
    b, _ = checkpoint.load(out / f"ckpt-{ITERS:07d}.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)   # weights, optimisers, RNG, cursor


@pytest.mark.slow
def test_sigint_to_the_process_group_saves_and_exits_130(tmp_path, folder):
    out = tmp_path / "run"
    code, _, stderr = stop_group_after_progress(command(folder, out), out, signal.SIGINT)
    assert code == 130, stderr
    assert "Traceback" not in stderr
    assert list(out.glob("ckpt-*.safetensors"))


@pytest.mark.slow
def test_a_process_exits_even_when_a_dropped_loader_left_its_workers_behind(tmp_path):
    """Workers ignore SIGTERM, so multiprocessing's exit hook (terminate, then join) would wait for them forever;
    an iterator kept alive in a reference cycle after its loader is gone must not hang the process at exit."""
    script = tmp_path / "leak.py"
    script.write_text(textwrap.dedent(f"""
        import sys, torch
        sys.path.insert(0, {str(TESTS)!r})
        from pathlib import Path
        from standins import write_pngs
        from wgan_cli.data.images import load_image_data
        write_pngs(Path({str(tmp_path / "pics")!r}), 40, size=32)
        data = load_image_data("folder:{tmp_path / 'pics'}", None, size=32, device="cpu", batch_size=8, workers=2,
                               memory_budget=0)
        data.train.sample(8, torch.Generator())
        cycle = [data.train._iter]
        cycle.append(cycle)
        del data
        print("sampled")
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env=env())
    assert proc.returncode == 0 and "sampled" in proc.stdout, proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_signal_while_a_folder_is_prepared_stops_at_once_and_leaves_nothing(tmp_path, monkeypatch,
                                                                               sigterm_at_third_image):
    """Preparing a large folder takes hours: SIGTERM stops it at once (not at the first training step, after it),
    exit 143, with no prepared set, no temporary folder and no run directory left."""
    from typer.testing import CliRunner

    from wgan_cli.cli import app

    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for i in range(12):
        Image.fromarray(np.full((32, 32, 3), 20 * i, dtype=np.uint8)).save(pictures / f"{i:03d}.png")
    monkeypatch.setenv("WGAN_CACHE_DIR", str(tmp_path / "cache"))
    decoded = sigterm_at_third_image
    handler = signal.getsignal(signal.SIGTERM)
    r = CliRunner().invoke(app, ["train", "--dataset", f"folder:{pictures}", "--workers", "1", "--arch", "dcgan",
                                 "--size", "32", "--dim", "4", "--batch-size", "4", "--iters", "2", "--device", "cpu",
                                 "--plain", "--out", str(tmp_path / "run")])
    assert r.exit_code == 143, r.output
    assert "SIGTERM while reading the data, before the run started: stopped, nothing written" in r.output
    assert len(decoded) == 3   # stopped at once, not after the other 9 images
    cache = tmp_path / "cache"
    assert not list(cache.rglob("manifest.json")) and not list(cache.rglob("*.partial")), list(cache.rglob("*"))
    assert not (tmp_path / "run").exists()
    assert signal.getsignal(signal.SIGTERM) is handler   # the command's handlers are gone with it
