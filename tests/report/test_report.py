"""Reports over run directories: tiny real toy and image runs, hand-written logs with known numbers, and the
`wgan report` command."""

import json
from pathlib import Path

import pytest
import torch
from standins import write_mnist
from typer.testing import CliRunner

from wgan_cli import report
from wgan_cli.cli import app
from wgan_cli.config import ImageOptions, RunOptions, ToyOptions, TrainConfig
from wgan_cli.errors import DataError, UsageError
from wgan_cli.runs import train_run
from wgan_cli.toy import ToyTask
from wgan_cli.image import ImageTask

runner = CliRunner()


def train_toy(path: Path, cfg: TrainConfig, dim: int = 8, n_eval: int = 64) -> None:
    train_run(ToyTask(ToyOptions(dim=dim, n_eval=n_eval)), cfg, RunOptions(out=str(path), device="cpu", log_every=1))


# ---- tiny real runs (built once for the module) -----------------------------------------------------------
@pytest.fixture(scope="module")
def real_runs(tmp_path_factory) -> dict[str, Path]:
    """Two toy runs that differ only in --penalty, and one image run on a stand-in MNIST with a sample grid at
    every iteration and a validation estimate every 2."""
    root = tmp_path_factory.mktemp("runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for penalty in ("gp", "clip"):
            train_toy(root / f"toy-{penalty}", TrainConfig(penalty=penalty, iters=4, batch_size=32))
        write_mnist(root)
        opts = ImageOptions(dataset="mnist", data_dir=str(root), arch="dcgan", dim=2, sample_every=1, eval_every=2,
                            n_val=4, workers=0, download=False)
        train_run(ImageTask(opts), TrainConfig(batch_size=8, n_critic=1, iters=4),
                  RunOptions(out=str(root / "img"), device="cpu", log_every=1, save_every=100))
    finally:
        torch.set_num_threads(threads)
    return {name: root / name for name in ("toy-gp", "toy-clip", "img")}


@pytest.fixture(scope="module")
def written(real_runs, tmp_path_factory):
    runs = [report.load_run(p) for p in real_runs.values()]
    out = tmp_path_factory.mktemp("report")
    return out, report.write_report(runs, out)


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_report_writes_every_file(real_runs, written):
    out, result = written
    eval_keys = {k for p in real_runs.values() for r in rows_of(p) if r["event"] == "eval" for k in r} - {
        "event", "step", "time"}
    expected = {"curves-iterations.png", "curves-seconds.png", "summary.md", "summary.json", "index.html",
                "samples-img.gif", "train-vs-validation.png", *(f"metrics-{k}.png" for k in eval_keys)}
    assert "w1" in eval_keys and "val_w_dist" in eval_keys
    assert set(result["files"]) == expected
    assert {p.name for p in out.iterdir()} == expected   # nothing else: no temporary files left behind
    for name in expected:
        data = (out / name).read_bytes()
        assert data, name
        if name.endswith(".png"):
            assert data[:8] == b"\x89PNG\r\n\x1a\n", name


def test_samples_gif_has_one_frame_per_grid(real_runs, written):
    from PIL import Image

    out, _ = written
    grids = sorted((real_runs["img"] / "samples").glob("iter-*.png"))
    assert len(grids) == 4
    with Image.open(out / "samples-img.gif") as gif:
        assert gif.n_frames == 4 and gif.is_animated


def test_index_html_is_self_contained(written):
    out, result = written
    page = (out / "index.html").read_text()
    images = [n for n in result["files"] if n.endswith((".png", ".gif"))]
    assert page.count("<img ") == len(images) + 2   # + the two toy runs' value surfaces
    assert page.count('src="data:image/') == page.count("src=")
    assert "http" not in page and "<link" not in page and "<script" not in page
    assert "penalty=clip" in page and "<table>" in page


def test_summary_numbers_equal_the_logs(real_runs, written):
    out, _ = written
    summary = {r["run"]: r for r in json.loads((out / "summary.json").read_text())["runs"]}
    assert set(summary) == set(real_runs)
    for name, path in real_runs.items():
        rows = rows_of(path)
        s = summary[name]
        assert s["iterations"] == max(r["step"] for r in rows if r["event"] == "step") == 4
        assert s["status"] == "finished" and s["segments"] == 1
        evals = [r for r in rows if r["event"] == "eval"]
        assert s["metrics"], name
        for metric, got in s["metrics"].items():
            values = [r[metric] for r in evals if metric in r]
            assert got["last"] == values[-1]
            assert got["best"] == (max(values) if got["better"] == "higher" else min(values))
        steps = [r for r in rows if r["event"] == "step"]
        for stat in ("w_dist", "loss_d", "gp", "loss_g"):
            assert s["stats"][stat]["last"] == steps[-1][stat]
        times = [r["time"] for r in rows]
        assert s["minutes"] == pytest.approx((times[-1] - times[0]) / 60)   # one segment: its whole span
    assert summary["img"]["method"] == "wgan-gp" and summary["toy-clip"]["method"] == "wgan-clip"
    evals = [r for r in rows_of(real_runs["img"]) if r["event"] == "eval"]
    assert len(evals) == 2 and summary["img"]["metrics"]["val_w_dist"]["last_step"] == 4
    md = (out / "summary.md").read_text()
    assert "| toy-clip | command=toy, penalty=clip | wgan-clip | toy-mlp dim 8 | 4 |" in md
    assert f"{summary['toy-gp']['metrics']['w1']['last']:.4g}" in md


def test_labels_name_the_differing_option(real_runs):
    toy = [report.load_run(real_runs[n]) for n in ("toy-gp", "toy-clip")]
    assert report.labels(toy) == ["penalty=gp", "penalty=clip"]
    full = report.labels(toy, all_keys=True)
    assert full[1].startswith("penalty=clip, ") and "lr=5e-05" in full[1] and "optimizer=rmsprop" in full[1]
    assert not any("out=" in lab or "device=" in lab for lab in full)
    three = report.labels([*toy, report.load_run(real_runs["img"])])
    assert three == ["command=toy, penalty=gp", "command=toy, penalty=clip", "command=train, penalty=gp"]


# ---- hand-written run directories ---------------------------------------------------------------------------
def make_run(path: Path, options: dict, rows: list[dict], *, extra_options: tuple = (), tail: str = "") -> Path:
    path.mkdir(parents=True)
    (path / "options.json").write_text(json.dumps(options))
    for i, more in enumerate(extra_options, start=2):
        (path / f"options.{i}.json").write_text(json.dumps(more))
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)
    return path


def toy_options(**train) -> dict:
    return {"command": "toy", "device": "cpu", "toy": {"dataset": "8gaussians", "dim": 8, "out": "x"},
            "train": {"objective": "wgan", "penalty": "gp", "lr": 1e-4, "iters": 3, **train}}


def test_wall_clock_leaves_out_time_stopped_and_redone_rows(tmp_path):
    rows = [{"event": "start", "step": 0, "total": 3, "time": 1000.0},
            {"event": "step", "step": 1, "w_dist": 1.0, "time": 1002.0},
            {"event": "step", "step": 2, "w_dist": 2.0, "time": 1004.0},
            {"event": "saved", "step": 2, "kind": "train-state", "path": "c", "time": 1004.5},
            {"event": "step", "step": 3, "w_dist": 30.0, "time": 1006.0},   # lost: the run resumes at 2
            {"event": "start", "step": 2, "total": 4, "time": 2006.0},       # 1000 s stopped
            {"event": "step", "step": 3, "w_dist": 3.0, "time": 2009.0},
            {"event": "step", "step": 4, "w_dist": 4.0, "time": 2010.0},
            {"event": "eval", "step": 4, "w1": 0.5, "time": 2011.0}]
    path = make_run(tmp_path / "r", toy_options(), rows, extra_options=({"train": {"iters": 4}},),
                    tail='{"event": "step", "step": 5, "w_di')   # a last line cut short
    run = report.load_run(path)
    assert run.segments == 2
    assert run.seconds == pytest.approx(6.0 + 5.0)
    assert run.training_seconds == pytest.approx(11.0 - 0.5 - 1.0)   # the save and the evaluation left out
    steps, seconds, values = run.series("w_dist", "step")
    assert steps == [1, 2, 3, 4] and values == [1.0, 2.0, 3.0, 4.0]
    assert seconds == pytest.approx([2.0, 4.0, 8.5, 9.5])
    assert [r["active_seconds"] for r in run.event_rows("step")] == pytest.approx([2.0, 4.0, 9.0, 10.0])
    assert run.iterations == 4
    assert run.options["train"] == {"objective": "wgan", "penalty": "gp", "lr": 1e-4, "iters": 4}
    assert run.options["toy"]["dim"] == 8   # options.2.json merges over options.json, key by key
    row = report.summary([run])[0]
    assert row["minutes"] == pytest.approx(11.0 / 60) and row["status"] == "finished"
    assert row["training_minutes"] == pytest.approx(9.5 / 60)


def test_training_time_leaves_out_evaluations_and_checkpoints(tmp_path):
    """Figure 3's wall-clock axis: a run scored often must not look slower for it. Callback rows logged at the
    iteration of the row before them mark callback time; a grid at an iteration with no step row does not."""
    rows = [{"event": "start", "step": 0, "total": 4, "time": 0.0},
            {"event": "eval", "step": 0, "js1": 0.5, "time": 30.0},         # evaluation of the untrained model
            {"event": "step", "step": 2, "w_dist": 1.0, "time": 32.0},
            {"event": "saved", "step": 2, "kind": "train-state", "path": "c", "time": 33.0},
            {"event": "eval", "step": 2, "fid": 10.0, "time": 100.0},       # 67 s of scoring
            {"event": "artifact", "step": 3, "kind": "samples", "path": "s.png", "time": 102.0},   # after step 3
            {"event": "step", "step": 4, "w_dist": 2.0, "time": 104.0}]
    run = report.load_run(make_run(tmp_path / "r", toy_options(), rows))
    assert run.seconds == 104.0 and run.training_seconds == pytest.approx(104.0 - 30 - 1 - 67)
    assert run.series("fid", "eval")[1] == pytest.approx([2.0])
    assert run.series("w_dist", "step")[1] == pytest.approx([2.0, 6.0])


def test_real_resumed_run_joins_its_segments(tmp_path, one_thread):
    train_toy(tmp_path / "r", TrainConfig(iters=2, batch_size=16), dim=4, n_eval=16)
    train_toy(tmp_path / "r", TrainConfig(iters=4, batch_size=16), dim=4, n_eval=16)
    run = report.load_run(tmp_path / "r")
    assert (tmp_path / "r" / "options.2.json").is_file()
    assert run.segments == 2 and run.iterations == 4 and run.options["train"]["iters"] == 4
    assert run.series("w_dist", "step")[0] == [1, 2, 3, 4]
    times = [r["time"] for r in rows_of(tmp_path / "r")]
    assert run.seconds <= times[-1] - times[0]
    assert report.summary([run])[0]["status"] == "finished"


def test_run_in_progress_and_without_rows(tmp_path):
    started = make_run(tmp_path / "started", toy_options(), [{"event": "start", "step": 0, "total": 3,
                                                              "time": 5.0}])
    empty = make_run(tmp_path / "empty", toy_options(lr=2e-4), [])
    runs = [report.load_run(started), report.load_run(empty)]
    assert runs[1].rows == [] and runs[1].seconds == 0.0
    result = report.write_report(runs, tmp_path / "out")
    assert [r["status"] for r in result["runs"]] == ["incomplete", "incomplete"]
    assert [r["label"] for r in result["runs"]] == ["lr=0.0001", "lr=0.0002"]
    for name in result["files"]:
        assert (tmp_path / "out" / name).stat().st_size > 0


@pytest.mark.slow
def test_text_runs_floors_artifacts_and_non_finite_values(tmp_path):
    """A textgen log (js1..js4 with the real-data floor js*_real at step 0, samples/iter-*.txt) and an image
    log whose sample grids are named by artifact rows outside samples/."""
    from PIL import Image

    text = {"command": "textgen", "textgen": {"corpus": "c.txt", "dim": 8, "seq_len": 8, "out": "t"},
            "train": {"objective": "wgan", "penalty": "gp", "iters": 4}}
    floor = {f"js{n}_real": 0.01 * n for n in range(1, 5)}
    rows = [{"event": "start", "step": 0, "total": 4, "time": 0.0},
            {"event": "eval", "step": 0, **{f"js{n}": 0.5 + n / 10 for n in range(1, 5)}, **floor, "time": 1.0},
            {"event": "step", "step": 4, "w_dist": 1.0, "time": 2.0},
            {"event": "eval", "step": 4, **{f"js{n}": 0.2 + n / 10 for n in range(1, 5)}, "time": 3.0}]
    t = make_run(tmp_path / "text", text, rows)
    (t / "samples").mkdir()
    (t / "samples" / "iter-0000004.txt").write_text("the newest <line>\n")
    (t / "samples" / "iter-0000000.txt").write_text("an old line\n")
    image = {"command": "train", "image": {"dataset": "cifar10", "out": "i"}, "model": {"arch": "dcgan"},
             "train": {"objective": "wgan", "penalty": "gp", "iters": 4}}
    i = make_run(tmp_path / "img", image, [{"event": "start", "step": 0, "total": 4, "time": 0.0},
                                           {"event": "eval", "step": 2, "fid": float("nan"), "time": 1.0},
                                           {"event": "artifact", "step": 2, "kind": "samples",
                                            "path": "grids/a.png", "time": 1.0},
                                           {"event": "artifact", "step": 4, "kind": "samples",
                                            "path": str(tmp_path / "img" / "grids" / "b.png"), "time": 2.0}])
    (i / "grids").mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (8, 8)).save(i / "grids" / f"{name}.png")
    runs = [report.load_run(t), report.load_run(i)]
    assert [step for step, _ in report.sample_files(runs[1])] == [2, 4]
    result = report.write_report(runs, tmp_path / "out")
    files = set(result["files"])
    assert {f"metrics-js{n}.png" for n in range(1, 5)} <= files and "metrics-fid.png" in files
    assert not any("_real" in f for f in files)   # floors are drawn in their metric's figure
    assert "samples-img.gif" in files and "samples-text.gif" not in files
    page = (tmp_path / "out" / "index.html").read_text()
    assert "the newest &lt;line&gt;" in page and "an old line" not in page
    json.dumps(result, allow_nan=False)   # --json output is strict JSON
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())["runs"]
    assert summary[0]["metrics"]["js1"]["last"] == 0.2 + 1 / 10 and summary[0]["metrics"]["js1_real"]["last"] == 0.01
    assert summary[1]["metrics"]["fid"]["last"] is None


def test_labels_fall_back_to_folder_names(tmp_path):
    same = [make_run(tmp_path / n, toy_options(), []) for n in ("a", "b")]
    assert report.labels([report.load_run(p) for p in same]) == ["a", "b"]
    assert report.labels([report.load_run(same[0])]) == ["a"]
    twins = [make_run(tmp_path / d / "run", toy_options(), []) for d in ("x", "y")]
    assert report.labels([report.load_run(p) for p in twins]) == ["x/run", "y/run"]
    assert report.labels([report.load_run(twins[0])] * 2) == ["x/run #1", "x/run #2"]
    # two runs share options, a third differs: the shared label gets the folder name
    c = make_run(tmp_path / "c", toy_options(penalty="lp"), [])
    assert report.labels([report.load_run(p) for p in (*same, c)]) == ["penalty=gp (a)", "penalty=gp (b)",
                                                                     "penalty=lp"]


def test_a_folder_that_is_not_a_run_is_refused(tmp_path, real_runs):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="not a run directory") as e:
        report.load_run(tmp_path / "empty")
    assert "options.json" in e.value.message and e.value.hint
    with pytest.raises(UsageError, match="no such folder"):
        report.load_run(tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        report.load_run(tmp_path / "file.txt")
    with pytest.raises(UsageError) as e:   # the parent of runs: the hint names them
        report.load_run(real_runs["img"].parent)
    assert "toy-gp" in e.value.hint
    half = tmp_path / "half"
    half.mkdir()
    (half / "options.json").write_text(json.dumps(toy_options()))
    with pytest.raises(DataError, match="no metrics.jsonl"):
        report.load_run(half)
    bad = make_run(tmp_path / "bad", toy_options(), [])
    (bad / "options.json").write_text('{"command": "toy", ')
    with pytest.raises(DataError, match="options.json"):
        report.load_run(bad)


def test_gif_keeps_at_most_the_frame_cap(tmp_path):
    from PIL import Image

    files = []
    for i in range(report.MAX_GIF_FRAMES + 13):
        path = tmp_path / f"iter-{i:07d}.png"
        Image.new("RGB", (16, 16), (4 * i % 256, 0, 0)).save(path)
        files.append((i, path))
    (tmp_path / "iter-9999999.png").write_bytes(b"\x89PNG cut short")
    files.append((9999999, tmp_path / "iter-9999999.png"))   # being written: skipped
    gif = tmp_path / "s.gif"
    gif.write_bytes(report.samples_gif(files[:-1]))
    with Image.open(gif) as im:
        assert im.n_frames == report.MAX_GIF_FRAMES and im.size == (16, 30)
    with Image.open(tmp_path / "s.gif") as im:
        im.seek(im.n_frames - 1)
        last = im.convert("RGB").getpixel((8, 22))
    assert last[0] == pytest.approx(4 * (len(files) - 2) % 256, abs=8)   # the newest grid is the last frame
    assert report.samples_gif(files[-1:]) is None


# ---- Table 2 ----------------------------------------------------------------------------------------------
def image_options(objective: str, penalty: str, *, arch_seed=None, critic_norm="none") -> dict:
    opts = {"command": "train", "image": {"dataset": "cifar10", "arch": "dcgan", "out": "x"},
            "train": {"objective": objective, "penalty": penalty},
            "model": {"arch": "dcgan", "dim": 4, "size": 32, "channels": 3, "critic_norm": critic_norm}}
    if arch_seed is not None:
        opts["image"]["arch_seed"] = arch_seed
        opts["model"] = {"arch": "random", "g_depth": arch_seed}
    return opts


# final (IS, FID) per architecture and method; an earlier evaluation has other values, to be ignored
FINALS = {
    0: {"gan": (6.0, 40.0), "gp": (7.0, 30.0), "lp": (6.5, 35.0)},
    1: {"gan": (2.0, 80.0), "gp": (5.0, 50.0), "lp": (5.5, 45.0)},
    2: {"gan": (4.0, 45.0), "gp": (3.0, 60.0)},
    "dcgan": {"gan": (1.0, 90.0), "gp": (1.5, 85.0), "lp": (1.0, 85.0)},   # paired by model spec, no seed
}
METHODS = {"gan": ("gan", "none"), "gp": ("wgan", "gp"), "lp": ("wgan", "lp")}


@pytest.fixture
def table2_runs(tmp_path) -> list:
    paths = []
    for arch, methods in FINALS.items():
        for m, (is_, fid) in methods.items():
            objective, penalty = METHODS[m]
            seed = arch if isinstance(arch, int) else None
            norm = {"gan": "batchnorm", "gp": "layernorm", "lp": "layernorm"}[m]
            rows = [{"event": "start", "step": 0, "total": 10, "time": 0.0},
                    {"event": "eval", "step": 5, "is": 99.0, "fid": 0.1, "time": 1.0},
                    {"event": "eval", "step": 10, "is": is_, "is_std": 0.1, "fid": fid, "time": 2.0}]
            paths.append(make_run(tmp_path / f"a{arch}-{m}", image_options(objective, penalty, arch_seed=seed,
                                                                             critic_norm=norm), rows))
    paths.append(make_run(tmp_path / "a0-clip", image_options("wgan", "clip", arch_seed=0),
                          [{"event": "eval", "step": 10, "is": 9.0, "fid": 1.0, "time": 1.0}]))
    paths.append(make_run(tmp_path / "a7-gan", image_options("gan", "none", arch_seed=7),
                          [{"event": "eval", "step": 10, "is": 9.0, "fid": 1.0, "time": 1.0}]))
    return [report.load_run(p) for p in paths]


def counts(t2: dict) -> list[tuple]:
    return [(r["only_gan"], r["only_wgan_gp"], r["both"], r["neither"]) for r in t2["rows"]]


def test_table2_counts_inception_score(table2_runs):
    t2 = report.table2(table2_runs, "is", [1.0, 3.0, 5.5, 8.0], higher_is_better=True)
    assert t2["architectures"] == 4   # the seed-7 architecture has no WGAN-GP run
    assert counts(t2) == [(0, 1, 3, 0), (1, 1, 1, 1), (0, 0, 1, 3), (0, 0, 0, 4)]
    assert t2["appendix_c"] == {"architectures": 3, "gp_better": 2, "lp_better": 1, "ties": 0}
    assert t2["ignored"] == ["a0-clip"] and t2["missing"] == [] and t2["duplicates"] == []


def test_table2_counts_fid_below(table2_runs):
    t2 = report.table2(table2_runs, "fid", [35, 50, 70], higher_is_better=False)
    assert counts(t2) == [(0, 1, 0, 3), (1, 0, 1, 2), (0, 1, 2, 1)]
    assert t2["appendix_c"] == {"architectures": 3, "gp_better": 1, "lp_better": 1, "ties": 1}


@pytest.mark.slow
def test_table2_in_the_report_and_refusals(table2_runs, tmp_path):
    t2 = report.table2(table2_runs, "is", [3.0], higher_is_better=True)
    result = report.write_report(table2_runs, tmp_path / "out", table2=t2)
    assert {"table2.md", "table2.json"} <= set(result["files"])
    assert json.loads((tmp_path / "out" / "table2.json").read_text())["rows"] == t2["rows"]
    md = (tmp_path / "out" / "table2.md").read_text()
    assert "| 3 | 1 | 1 | 1 | 1 |" in md and "2 of 3 architectures" in md
    assert "Table 2" in (tmp_path / "out" / "index.html").read_text()
    with pytest.raises(UsageError, match="kid") as e:
        report.table2(table2_runs, "kid", [1.0])
    assert "fid" in e.value.hint
    with pytest.raises(UsageError, match="threshold"):
        report.table2(table2_runs, "is", [])


def test_table2_counts_a_repeated_method_once(table2_runs, tmp_path):
    again = make_run(tmp_path / "a2-gan-again", image_options("gan", "none", arch_seed=2),
                     [{"event": "eval", "step": 20, "is": 9.0, "time": 1.0}])
    t2 = report.table2([*table2_runs, report.load_run(again)], "is", [5.5])
    assert t2["duplicates"] == ["a2-gan"]   # the longer run is kept: GAN now succeeds on architecture 2
    assert counts(t2) == [(1, 0, 1, 2)]


def test_table2_counts_a_run_without_a_value_as_a_failure(table2_runs, tmp_path):
    """A run that diverged (or is still running) logged no final metric: it did not succeed."""
    rows = [{"event": "start", "step": 0, "total": 10, "time": 0.0},
            {"event": "step", "step": 5, "w_dist": 1.0, "time": 1.0}]
    diverged = make_run(tmp_path / "a7-gp", image_options("wgan", "gp", arch_seed=7), rows)
    t2 = report.table2([*table2_runs, report.load_run(diverged)], "is", [1.0, 8.0])
    assert t2["architectures"] == 5 and t2["missing"] == ["a7-gp"]
    assert counts(t2) == [(1, 1, 3, 0), (1, 0, 0, 4)]   # architecture 7: only GAN (IS 9) succeeds
    assert "Counted as failures" in report.table2_markdown(t2) and "a7-gp" in report.table2_markdown(t2)


def test_table2_direction_follows_the_metric(table2_runs):
    assert report.table2(table2_runs, "is", [3.0])["higher_is_better"] is True
    fid = report.table2(table2_runs, "fid", [35, 50, 70])
    assert fid["higher_is_better"] is False
    assert counts(fid) == counts(report.table2(table2_runs, "fid", [35, 50, 70], higher_is_better=False))
    assert "below the threshold" in report.table2_markdown(fid)


def test_artifacts_logged_relative_to_where_the_run_was_started(tmp_path):
    """metrics.jsonl names files as the training command saw them ("runs/x/samples/a.png", relative to its
    working folder); the report finds them from anywhere."""
    from PIL import Image

    opts = {"command": "train", "image": {"dataset": "cifar10"}, "run": {"out": "runs/x"},
            "train": {"objective": "wgan", "penalty": "gp", "iters": 2}}
    run = make_run(tmp_path / "x", opts, [{"event": "artifact", "step": 1, "kind": "samples",
                                             "path": "runs/x/grids/a.png", "time": 1.0}])
    (run / "grids").mkdir()
    Image.new("RGB", (8, 8)).save(run / "grids" / "a.png")
    assert report.sample_files(report.load_run(run)) == [(1, (run / "grids" / "a.png").resolve())]


# ---- the command ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_report_command_writes_and_names_every_file(real_runs, tmp_path):
    out = tmp_path / "out"
    r = runner.invoke(app, ["report", *map(str, real_runs.values()), "-o", str(out)])
    assert r.exit_code == 0, r.output
    written = sorted(line.removeprefix("wrote ") for line in r.output.splitlines())
    assert written == sorted(str(p) for p in out.iterdir())
    assert (out / "index.html").is_file() and (out / "samples-img.gif").is_file()
    r = runner.invoke(app, ["report", str(real_runs["toy-gp"]), "-o", str(out / "json"), "--json"])
    result = json.loads(r.output)
    assert result["runs"][0]["run"] == "toy-gp" and "index.html" in result["files"]


@pytest.mark.slow
def test_report_command_prints_table2(table2_runs, tmp_path):
    paths = [str(run.path) for run in table2_runs]
    r = runner.invoke(app, ["report", *paths, "-o", str(tmp_path / "out"), "--table2", "is", "--thresholds", "1",
                            "3", "5.5", "8"])
    assert r.exit_code == 0, r.output
    assert "| 1 | 0 | 1 | 3 | 0 |" in r.output and "| 3 | 1 | 1 | 1 | 1 |" in r.output
    assert "| 5.5 | 0 | 0 | 1 | 3 |" in r.output and "| 8 | 0 | 0 | 0 | 4 |" in r.output
    assert "gp) ended better than the one-sided one (lp) on 2 of 3 architectures" in r.output
    r = runner.invoke(app, ["report", *paths, "-o", str(tmp_path / "fid"), "--table2", "fid", "--thresholds",
                            "35,50,70", "--json"])
    t2 = json.loads(r.output)["table2"]
    assert counts(t2) == [(0, 1, 0, 3), (1, 0, 1, 2), (0, 1, 2, 1)] and not t2["higher_is_better"]
    assert (tmp_path / "fid" / "table2.md").is_file()


@pytest.mark.parametrize("args,code,words", [
    (["{empty}"], 2, "is not a run directory"),
    (["{empty}/nowhere"], 2, "no such folder"),
    (["{half}"], 3, "no metrics.jsonl"),
    (["{run}", "--thresholds", "1"], 2, "--thresholds needs --table2"),
    (["{run}", "--table2", "is"], 2, "--table2 needs --thresholds"),
    (["{run}", "--table2", "kid", "--thresholds", "1"], 2, "no GAN or WGAN-GP/LP run logged 'kid'"),
])
def test_report_command_refusals(tmp_path, args, code, words):
    (tmp_path / "empty").mkdir()
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "options.json").write_text(json.dumps(toy_options()))
    run = make_run(tmp_path / "run", image_options("gan", "none", arch_seed=1),
                   [{"event": "eval", "step": 1, "is": 2.0, "time": 1.0}])
    args = [a.format(empty=tmp_path / "empty", half=tmp_path / "half", run=run) for a in args]
    r = runner.invoke(app, ["report", *args, "-o", str(tmp_path / "out")])
    assert r.exit_code == code, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: ")
    assert words in lines[0]
    assert not (tmp_path / "out").exists()
