"""One run directory, one writer: the lock, its owner named, stale once the owner is gone; resuming with other data
or another model refused unless --resume-with-changes; the leftovers of a killed save removed at start."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from wgan_cli import checkpoint
from wgan_cli.cli import app
from wgan_cli.errors import LockedError
from wgan_cli.locking import RunLock
from paths import ROOT

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")
TINY = ["--dim", "8", "--depth", "1", "--batch-size", "16", "--n-critic", "1", "--plot-every", "1000",
        "--device", "cpu", "--quiet"]


def env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def toy(out, *extra, iters="6"):
    args = [*TINY[:-1], *extra] if "--plain" in extra else [*TINY, *extra]   # --plain: show the notes
    return runner.invoke(app, ["toy", "--iters", iters, *args, "--out", str(out)])


@pytest.mark.slow
def test_a_held_lock_refuses_a_second_run_naming_the_owner(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with RunLock(out):
        r = toy(out)
        assert r.exit_code == 8, r.output
        lines = r.output.strip().splitlines()
        assert lines[0].startswith(f"error: {out} is in use by another run: pid {os.getpid()} on ")
        assert lines[1].startswith("hint: ") and len(lines) == 2
        assert not list(out.glob("*.safetensors")) and not (out / "metrics.jsonl").exists()
    r = toy(out)                                # released: the same command now runs
    assert r.exit_code == 0, r.output
    assert (out / "ckpt-0000006.safetensors").exists()
    with RunLock(out):                          # and its own lock was released at its end
        pass


def test_a_run_refused_before_the_owner_wrote_its_details_waits_for_them(tmp_path):
    """The holder writes its details just after taking the lock; a run refused in that moment names it anyway."""
    import fcntl
    import threading

    lock_file = tmp_path / ".lock"
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)                    # held, and the file still empty
    late = threading.Timer(0.2, lambda: lock_file.write_text(json.dumps({"pid": 4242, "host": "h"})))
    late.start()
    try:
        with pytest.raises(LockedError, match="in use by another run: pid 4242 on h"):
            RunLock(tmp_path).acquire()
    finally:
        late.join()
        os.close(fd)


@pytest.mark.slow
def test_two_concurrent_runs_exactly_one_proceeds(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "wgan_cli", "toy", "--iters", "1000000", *TINY, "--out", str(out)]
    procs = [subprocess.Popen(cmd + ["--seed", str(seed)], cwd=ROOT, env=env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    try:
        deadline = time.time() + 240
        while all(p.poll() is None for p in procs) and time.time() < deadline:
            time.sleep(0.1)
        refused = [p for p in procs if p.poll() == 8]
        assert len(refused) == 1, [p.poll() for p in procs]
        winner = next(p for p in procs if p is not refused[0])
        err = refused[0].communicate()[1]
        assert f"is in use by another run: pid {winner.pid} on " in err and "Traceback" not in err
        assert "`wgan toy --iters 1000000 " in err             # the owner's command line, as typed
        winner.send_signal(signal.SIGTERM)       # no need to train it to the end: stop it (saves, exits 143)
        assert winner.wait(timeout=120) == 143
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()
    seeds = {checkpoint.read_meta(p)["train"]["seed"] for p in out.glob("*.safetensors")}
    assert len(seeds) == 1                       # every file in the directory is the winner's


def test_the_lock_is_free_once_its_owner_is_killed_even_with_children_alive(tmp_path):
    """flock is released by the OS with the last descriptor; a forked child (a DataLoader worker) closes its
    copy at fork, so a SIGKILLed owner's lock is free at once."""
    script = ("import os, sys, time\n"
              "from wgan_cli.locking import RunLock\n"
              f"RunLock({str(tmp_path)!r}).acquire()\n"
              "if os.fork() == 0:\n"
              "    os.write(1, b'child\\n'); time.sleep(60); os._exit(0)\n"
              "os.write(1, b'locked\\n'); time.sleep(60)\n")   # one write each: the lines never interleave
    p = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env(), stdout=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        # both have run: the child prints after the fork's hooks (which close its copy of the descriptor), so a
        # loaded machine that has not yet scheduled the child cannot make the lock look held
        assert {p.stdout.readline().strip(), p.stdout.readline().strip()} == {"locked", "child"}
        with pytest.raises(LockedError, match=f"pid {p.pid}"):
            RunLock(tmp_path).acquire()
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
        with RunLock(tmp_path):                  # its child still runs, the lock is free
            pass
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


@pytest.mark.slow
def test_resume_with_other_data_is_refused_unless_asked(tmp_path):
    out = tmp_path / "run"
    assert toy(out, "--dataset", "8gaussians").exit_code == 0
    r = toy(out, "--dataset", "swissroll", iters="10")
    assert r.exit_code == 4 and "trained on different data" in r.output
    assert "dataset: 8gaussians vs swissroll" in r.output and "--resume-with-changes" in r.output
    assert not (out / "ckpt-0000010.safetensors").exists()
    r = toy(out, "--dataset", "swissroll", "--resume-with-changes", "--plain", iters="10")
    assert r.exit_code == 0, r.output
    assert "--resume-with-changes" in r.output and "resumed from" in r.output
    meta = checkpoint.read_meta(out / "ckpt-0000010.safetensors")
    assert meta["step"] == 10 and meta["extra"]["dataset"] == "swissroll"   # continued from 6, on the new data


@pytest.mark.slow
def test_resume_with_another_model_shows_the_difference(tmp_path):
    out = tmp_path / "run"
    assert toy(out).exit_code == 0
    r = runner.invoke(app, ["toy", "--iters", "10", *TINY, "--dim", "16", "--out", str(out)])
    assert r.exit_code == 4 and "dim: 8 vs 16" in r.output
    r = runner.invoke(app, ["toy", "--iters", "10", *TINY, "--dim", "16", "--out", str(out),
                            "--resume-with-changes"])
    assert r.exit_code == 4 and "do not fit the model" in r.output       # the override cannot make weights fit
    assert isinstance(r.exception, SystemExit)


@pytest.mark.slow
def test_changed_training_options_are_shown_on_resume(tmp_path):
    out = tmp_path / "run"
    assert toy(out).exit_code == 0
    r = runner.invoke(app, ["toy", "--iters", "8", *TINY[:-1], "--plain", "--lr", "2e-4", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "options changed since the checkpoint" in r.output and "iters: 6 vs 8" in r.output
    assert "lr: 0.0001 vs 0.0002" in r.output


@pytest.mark.slow
def test_stale_temporary_files_are_removed_at_start(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "figures").mkdir()
    ours = [out / ".ckpt-0000004.safetensors.k2j8x_0q.tmp", out / ".generator.safetensors.ab12cd34.tmp",
            out / "figures" / ".iter-0000004.png.zz99yy88.tmp"]
    theirs = [out / "notes.tmp", out / ".hidden", out / ".ckpt.tmp", out / "my.ab12cd34.tmp"]
    for p in ours + theirs:
        p.write_bytes(b"partial")
    r = runner.invoke(app, ["toy", "--iters", "2", *TINY[:-1], "--plain", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "removed 3 temporary file(s) left by an interrupted write" in r.output
    assert not any(p.exists() for p in ours) and all(p.exists() for p in theirs)


@pytest.mark.slow
def test_metrics_jsonl_cut_line_is_ended_on_resume(tmp_path):
    out = tmp_path / "run"
    assert toy(out).exit_code == 0
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"event": "step", "st')        # a crash in the middle of a line
    assert toy(out, iters="8").exit_code == 0
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert lines[-1].startswith("{") and json.loads(lines[-1])
    assert sum(1 for line in lines if line == '{"event": "step", "st') == 1   # the cut line stays alone
