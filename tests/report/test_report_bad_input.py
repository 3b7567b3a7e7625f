"""`wgan report` on run directories a user (or a damaged disk) made strange: `$` in names, rows that parse as
JSON but have another shape, a malformed options.json, HTML in names, non-finite thresholds, a sample grid over
Pillow's pixel limit. Each is reported on or refused with one error line, never a traceback."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wgan_cli import report
from wgan_cli.cli import app
from wgan_cli.errors import DataError

runner = CliRunner()

TOY = {"command": "toy", "toy": {"dataset": "8gaussians", "dim": 8},
       "train": {"objective": "wgan", "penalty": "gp", "iters": 2}}
ROWS = [{"event": "start", "step": 0, "total": 2, "time": 0.0},
        {"event": "step", "step": 1, "w_dist": 1.0, "time": 1.0},
        {"event": "eval", "step": 1, "w1": 0.5, "time": 1.5},
        {"event": "step", "step": 2, "w_dist": 2.0, "time": 2.0},
        {"event": "eval", "step": 2, "w1": 0.25, "time": 2.5}]


def make_run(path: Path, options=None, rows=None, extra_lines: str = "") -> Path:
    path.mkdir(parents=True)
    (path / "options.json").write_text(json.dumps(TOY if options is None else options))
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (ROWS if rows is None else rows))
                                        + extra_lines)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cost_$5_vs_$10", "lr$\\alpha$"])
def test_dollar_signs_in_run_names_are_text(tmp_path, name):
    """matplotlib reads `$...$` as mathtext: the first name made it raise, the second drew an alpha."""
    from matplotlib.text import Text

    a = make_run(tmp_path / name)
    b = make_run(tmp_path / "other$")   # the same options: the legend labels are the folder names
    parsed = []
    original = Text._preprocess_math

    def spy(self, s):
        out = original(self, s)
        parsed.append((s, out[1]))
        return out

    with pytest.MonkeyPatch.context() as m:
        m.setattr(Text, "_preprocess_math", spy)
        result = report.write_report([report.load_run(a), report.load_run(b)], tmp_path / "out")
    assert "index.html" in result["files"]
    assert name in [s for s, _ in parsed] and "other$" in [s for s, _ in parsed]
    assert not [s for s, math in parsed if math], "text drawn as mathtext"


@pytest.mark.slow
def test_dollar_metric_name_is_text(tmp_path):
    rows = [*ROWS, {"event": "eval", "step": 2, "fid$x$": 3.0, "time": 3.0}]
    run = make_run(tmp_path / "r", rows=rows)
    result = report.write_report([report.load_run(run)], tmp_path / "out")
    assert "metrics-fid_x.png" in result["files"]


@pytest.mark.parametrize("line", [
    '{"event": ["step"], "step": 3, "w_dist": 9.0, "time": 3.0}',           # unhashable event
    '{"event": "artifact", "step": 1e999, "kind": "samples", "path": "s.png", "time": 3.0}',   # step overflows
    '{"event": "step", "step": "3", "w_dist": 9.0, "time": 3.0}',            # step as text
    '{"event": "step", "step": -1, "w_dist": 9.0, "time": 3.0}',
    '{"event": "step", "step": 3, "w_dist": 9.0, "time": "late"}',
    '{"event": "step", "step": 3, "w_dist": 9.0, "time": 1e999}',
    '{"event": "artifact", "step": 3, "kind": ["samples"], "path": "s.png", "time": 3.0}',
    '{"event": "artifact", "step": 3, "kind": "samples", "path": {"p": 1}, "time": 3.0}',
    '[1, 2, 3]',
])
@pytest.mark.slow
def test_rows_of_another_shape_are_skipped(tmp_path, line):
    from PIL import Image

    run = make_run(tmp_path / "r", extra_lines=line + "\n")
    Image.new("RGB", (8, 8)).save(run / "s.png")   # the file an artifact row names exists: the row is read
    loaded = report.load_run(run)
    assert len(loaded.rows) == len(ROWS)   # the odd row left out, the good ones kept
    assert loaded.series("w_dist", "step")[2] == [1.0, 2.0]
    result = report.write_report([loaded], tmp_path / "out")
    assert result["runs"][0]["iterations"] == 2 and result["runs"][0]["metrics"]["w1"]["last"] == 0.25


@pytest.mark.parametrize("options,words", [
    ({**TOY, "train": [1, 2]}, '"train" is list'),
    ({**TOY, "toy": "8gaussians"}, '"toy" is str'),
    ({**TOY, "model": 3}, '"model" is int'),
    ({**TOY, "command": ["toy"]}, '"command"'),
    ({**TOY, "train": {"iters": "many"}}, "train.iters"),
    ({**TOY, "train": {"iters": 1e999}}, "train.iters"),
])
def test_a_malformed_options_json_is_refused(tmp_path, options, words):
    run = make_run(tmp_path / "r", options=options)
    with pytest.raises(DataError, match="options.json") as e:
        report.load_run(run)
    assert words in e.value.message and e.value.hint
    r = runner.invoke(app, ["report", str(run), "-o", str(tmp_path / "out")])
    assert r.exit_code == 3, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: ")
    assert not (tmp_path / "out").exists()


def test_a_malformed_resumed_segment_options_is_refused(tmp_path):
    run = make_run(tmp_path / "r")
    (run / "options.2.json").write_text(json.dumps({"train": "resumed"}))
    with pytest.raises(DataError, match="options.2.json"):
        report.load_run(run)


HOSTILE = "<img src=x onerror=alert(1)>&co"


@pytest.mark.slow
def test_markdown_cells_carry_no_raw_html(tmp_path):
    a = make_run(tmp_path / HOSTILE)
    b = make_run(tmp_path / "b", {**TOY, "train": {**TOY["train"], "lr": 1e-3}})
    rows = [*ROWS, {"event": "eval", "step": 2, "<b>x</b>": 1.0, "time": 3.0}]
    c = make_run(tmp_path / "c", rows=rows)
    runs = [report.load_run(p) for p in (a, b, c)]
    report.write_report(runs, tmp_path / "out")
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "<" not in md and ">" not in md
    assert "&lt;img src=x onerror=alert(1)&gt;&amp;co" in md and "&lt;b&gt;x&lt;/b&gt; last" in md
    page = (tmp_path / "out" / "index.html").read_text()
    assert "<img src=x" not in page and "<b>x</b>" not in page


def test_table2_markdown_carries_no_raw_html(tmp_path):
    def image(objective, penalty):
        return {"command": "train", "image": {"dataset": "cifar10", "arch_seed": 1},
                "model": {"arch": "random"}, "train": {"objective": objective, "penalty": penalty}}

    gan = make_run(tmp_path / "gan", image("gan", "none"), [{"event": "eval", "step": 1, "is": 2.0, "time": 1.0}])
    gp = make_run(tmp_path / f"gp{HOSTILE}", image("wgan", "gp"), [{"event": "step", "step": 1, "time": 1.0}])
    t2 = report.table2([report.load_run(gan), report.load_run(gp)], "is", [1.0])
    md = report.table2_markdown(t2)
    assert HOSTILE not in md and "&lt;img src=x onerror=alert(1)&gt;&amp;co" in md   # named as a failure


@pytest.mark.parametrize("args", [["--thresholds", "nan"], ["--thresholds", "inf"], ["--thresholds=-inf"],
                                  ["--thresholds", "1,nan"], ["--thresholds", "1", "inf"], ["--thresholds", "1e999"]])
def test_non_finite_thresholds_are_refused(tmp_path, args):
    run = make_run(tmp_path / "r")
    r = runner.invoke(app, ["report", str(run), "-o", str(tmp_path / "out"), "--table2", "w1", *args])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 2 and "not a finite number" in lines[0] and lines[1].startswith("hint: ")
    assert not (tmp_path / "out").exists()


def test_a_sample_grid_over_the_pixel_limit_is_skipped(tmp_path, monkeypatch):
    """Pillow refuses an image over twice its pixel limit with DecompressionBombError (not an OSError): such a
    grid is left out of the GIF as an unreadable one is. The limit is lowered so the test image stays small."""
    from PIL import Image

    run = make_run(tmp_path / "img", {"command": "train", "image": {"dataset": "mnist"},
                                      "train": {"objective": "wgan", "penalty": "gp", "iters": 2}})
    (run / "samples").mkdir()
    Image.new("RGB", (8, 8), (200, 0, 0)).save(run / "samples" / "iter-0000001.png")
    Image.new("RGB", (64, 64)).save(run / "samples" / "iter-0000002.png")   # 4096 px: over 2 x 1000
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    result = report.write_report([report.load_run(run)], tmp_path / "out")
    assert "samples-img.gif" in result["files"]
    with Image.open(tmp_path / "out" / "samples-img.gif") as gif:
        assert gif.n_frames == 1 and gif.size == (8, 8 + 14)   # the readable grid with its caption strip


def test_rows_before_the_first_start_row_join_its_segment(tmp_path):
    """`wgan textgen` evaluates the untrained model and logs it just before its start row: one segment, not
    two; its time counts. A log with step rows before a start row (older logs, then a resume) keeps two."""
    rows = [{"event": "eval", "step": 0, "js1": 0.9, "time": 10.0},
            {"event": "artifact", "step": 0, "kind": "text", "path": "s.txt", "time": 11.0},
            {"event": "start", "step": 0, "total": 2, "time": 12.0},
            {"event": "step", "step": 2, "w_dist": 1.0, "time": 14.0}]
    run = report.load_run(make_run(tmp_path / "text", rows=rows))
    assert run.segments == 1 and run.seconds == 4.0
    older = [{"event": "step", "step": 1, "w_dist": 1.0, "time": 10.0},
             {"event": "start", "step": 1, "total": 2, "time": 100.0},
             {"event": "step", "step": 2, "w_dist": 1.0, "time": 101.0}]
    run = report.load_run(make_run(tmp_path / "older", rows=older))
    assert run.segments == 2 and run.seconds == 1.0
