"""JSON and TOML parsers recurse once per level of nesting: a file nested deeper than the interpreter's stack is
refused as bad input (exit code 2, nothing created), and the other readers of JSON that a user can hand wgan
(metrics.jsonl rows, a run directory's .lock) skip such content as they skip any unreadable content."""

import json

import pytest
from typer.testing import CliRunner

from wgan_cli.cli import app
from wgan_cli.locking import read_owner
from wgan_cli.ui import read_jsonl

DEPTH = 100_000   # far beyond the default recursion limit (1,000) and the C JSON scanner's own guard


@pytest.mark.parametrize("suffix,text", [
    (".json", '{"train": ' + "[" * DEPTH + "]" * DEPTH + "}"),
    (".toml", "train = " + "[" * DEPTH + "]" * DEPTH + "\n"),
])
def test_a_deeply_nested_config_is_refused_with_exit_2(tmp_path, suffix, text):
    config = tmp_path / f"deep{suffix}"
    config.write_text(text)
    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["toy", "--config", str(config), "--out", str(out), "--iters", "1"])
    assert r.exit_code == 2, r.output
    assert f"error: --config {config}: nested too deeply" in r.stderr and "hint: " in r.stderr
    assert not out.exists()


def test_metrics_rows_nested_too_deeply_or_not_objects_are_skipped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = [{"event": "step", "step": 1}, {"event": "step", "step": 2}]
    path.write_text(json.dumps(rows[0]) + "\n" + "[" * DEPTH + "]" * DEPTH + "\n[1, 2]\n" + json.dumps(rows[1]) + "\n")
    assert read_jsonl(path) == rows


def test_a_lock_file_nested_too_deeply_names_no_owner(tmp_path):
    path = tmp_path / ".lock"
    path.write_text("[" * DEPTH + "]" * DEPTH)
    assert read_owner(path) is None
