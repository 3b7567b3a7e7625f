"""`wgan report --watch`: a `wgan report` process follows a run directory that this test writes row by row while
holding the run's lock, as a training command does; every version of the page it leaves is complete."""

import json
import os
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wgan_cli.cli import app
from wgan_cli.command import fill_optional_values
from wgan_cli.options import OPTIONAL_VALUES
from wgan_cli.locking import RunLock

WAIT = 120   # seconds for a subprocess to start and answer (torch and matplotlib imports on a loaded machine)
OPTIONS = {"command": "toy", "toy": {"dataset": "8gaussians", "dim": 8},
           "train": {"objective": "wgan", "penalty": "gp", "iters": 5}}


def start_run(path: Path) -> RunLock:
    path.mkdir()
    lock = RunLock(path).acquire()   # this process is the run's writer, as `wgan toy` would be
    (path / "options.json").write_text(json.dumps(OPTIONS))
    log(path, {"event": "start", "step": 0, "total": 5})
    return lock


def log(path: Path, row: dict) -> None:
    with open(path / "metrics.jsonl", "a") as f:
        f.write(json.dumps({**row, "time": time.time()}) + "\n")


def watcher(run: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.Popen([sys.executable, "-m", "wgan_cli", "report", str(run), "-o", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


class Page(HTMLParser):
    """The tags of one version of index.html, to tell a complete page from a cut one."""

    def __init__(self, text: str):
        super().__init__()
        self.open, self.refresh, self.closed = [], False, []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.open.append(tag)
        self.refresh |= tag == "meta" and ("http-equiv", "refresh") in attrs

    def handle_endtag(self, tag):
        self.closed.append(tag)


def next_version(page: Path, seen: bytes | None, proc: subprocess.Popen) -> bytes:
    """index.html once it differs from `seen` (the file is replaced whole: read it as it is)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            data = page.read_bytes()
        except FileNotFoundError:
            data = None
        if data is not None and data != seen:
            return data
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"no new version of {page} in {WAIT} s")


def check_complete(data: bytes) -> Page:
    text = data.decode("utf-8")
    assert text.startswith("<!doctype html>") and text.endswith("</body></html>\n")
    page = Page(text)
    assert page.closed[-2:] == ["body", "html"] and page.open[:3] == ["html", "head", "meta"]
    return page


@pytest.mark.slow
def test_watch_rewrites_as_rows_arrive_and_stops_when_the_run_ends(tmp_path):
    run, out = tmp_path / "run", tmp_path / "report"
    lock = start_run(run)
    proc = watcher(run, out, "--watch", "0.2")
    try:
        versions = [next_version(out / "index.html", None, proc)]
        for step in (1, 2, 3):
            log(run, {"event": "step", "step": step, "w_dist": float(step)})
            versions.append(next_version(out / "index.html", versions[-1], proc))
    finally:
        lock.release()   # the run ends: the lock file is emptied
    try:
        stdout, stderr = proc.communicate(timeout=WAIT)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    versions.append((out / "index.html").read_bytes())
    pages = [check_complete(v) for v in versions]
    lines = stdout.splitlines()
    assert len(lines) == 5 and all(line.startswith(f"wrote {out}/index.html ({i})") for i, line in
                                   enumerate(lines, start=1))   # one rewrite per change, and one at the end
    assert [p.refresh for p in pages] == [True, True, True, True, False]
    assert lines[-1].endswith("every run has ended") and "1 of 1 runs still going" in lines[0]
    for step, version in enumerate(versions[:4]):   # each version shows the rows logged before it
        text = version.decode()
        assert f"<td>{step} / 5</td>" in text and "<td>running</td>" in text
    assert "<td>3 / 5</td>" in versions[-1].decode() and "<td>incomplete</td>" in versions[-1].decode()
    summary = json.loads((out / "summary.json").read_text())["runs"][0]
    assert summary["iterations"] == 3 and summary["status"] == "incomplete"   # stopped before its 5


@pytest.mark.slow
def test_ctrl_c_leaves_a_complete_page_and_exits_130(tmp_path):
    run, out = tmp_path / "run", tmp_path / "report"
    lock = start_run(run)
    proc = watcher(run, out, "--watch")   # bare: the default interval
    try:
        first = next_version(out / "index.html", None, proc)
        assert check_complete(first).refresh
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=WAIT)
    finally:
        proc.kill()
        lock.release()
    assert proc.returncode == 130, stderr
    assert "stopped watching after 2 rewrites" in stderr and "index.html is complete" in stderr
    last = check_complete((out / "index.html").read_bytes())
    assert not last.refresh   # the page no longer reloads: nobody rewrites it
    assert "<td>running</td>" in (out / "index.html").read_text()   # the run itself is still going
    assert all(p.name[0] != "." for p in out.iterdir())   # no temporary file left behind


def test_a_bare_watch_takes_the_default_interval():
    def fill(args):
        return fill_optional_values(args, OPTIONAL_VALUES)

    assert fill(["runs/a", "--watch"]) == ["runs/a", "--watch", "10"]
    assert fill(["--watch", "runs/a", "-o", "r"]) == ["--watch", "10", "runs/a", "-o", "r"]
    assert fill(["runs/a", "--watch", "2.5", "-o", "r"]) == ["runs/a", "--watch", "2.5", "-o", "r"]
    assert fill(["--", "--watch"]) == ["--", "--watch"]


@pytest.mark.parametrize("value", ["0", "nan", "inf", "1e999", "-1", "90000"])
def test_a_watch_interval_out_of_range_is_refused(tmp_path, value):
    run = tmp_path / "run"
    run.mkdir()
    (run / "options.json").write_text(json.dumps(OPTIONS))
    (run / "metrics.jsonl").write_text("")
    r = CliRunner().invoke(app, ["report", str(run), "-o", str(tmp_path / "out"), f"--watch={value}"])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: --watch") and "[0.1, 86400]" in lines[0]
    assert not (tmp_path / "out").exists()
