"""Under torchrun W ranks compute the one-process algorithm: every random draw is the global batch's, cut into rank
slices; gradients, parameters, statistics and scores equal one process's; one run directory, one writer, one voted
stop, and a checkpoint that resumes on any number of ranks. The multi-process tests run 2 ranks on the CPU (Gloo)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from standins import write_pngs
from typer.testing import CliRunner

import dist_worker
from wgan_cli import checkpoint, distributed
from wgan_cli.torchrun import TIMEOUT_ENV, attach, check_batches
from wgan_cli.cli import app
from wgan_cli.config import RunOptions, ToyOptions, TrainConfig, resolve_train
from wgan_cli.data.decode import Decoding
from wgan_cli.data.prepared import list_folder, prepare
from wgan_cli.data.samplers import DeviceImages, PreparedRows, StreamImages
from wgan_cli.data.text import TextSampler
from wgan_cli.data.toy import make_toy_data
from wgan_cli.distributed import Group
from wgan_cli.engine import Engine
from wgan_cli.errors import UsageError
from wgan_cli.penalties import interpolate
from wgan_cli.ui import read_jsonl
from paths import ROOT

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
SETTINGS = ("toy", "conv", "cond", "folder", "augment")

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- launching ranks ---------------------------------------------------------------------------------------------
def rank_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                             "MASTER_PORT")}
    env.update({"OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", TIMEOUT_ENV: "120",
                "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])})
    return env


def descendants(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [p for c in children for p in (int(c), *descendants(int(c)))]


def launch(args: list[str], **env) -> subprocess.Popen:
    return subprocess.Popen([*TORCHRUN, *args], cwd=ROOT, env={**rank_env(), **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float) -> tuple[int, str, str]:
    """Wait for torchrun; past `timeout` kill it and its ranks (a hang fails the test instead of blocking CI)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for pid in [*descendants(proc.pid), proc.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        out, err = proc.communicate()
        pytest.fail(f"torchrun did not finish within {timeout} s:\n{err[-3000:]}")
    return proc.returncode, out, err


def torchrun(args: list[str], timeout: float = 240) -> tuple[int, str, str]:
    return finish(launch(args), timeout)


# ---- the slices of the global batch (no processes) ---------------------------------------------------------------
def draw_engine(group: Group) -> Engine:
    cfg = resolve_train(TrainConfig(batch_size=8, conditional=True, seed=1))
    images, labels = dist_worker.random_images(40, 8, 0, classes=4)
    engine = Engine(dist_worker.CondG(), dist_worker.CondD(), DeviceImages(images, labels, "tanh", True), cfg)
    engine.dist = group
    return engine


def engine_draws(engine: Engine, rounds: int = 3) -> tuple[list, list]:
    """What a critic step and a generator step draw, in their order: real batch and labels (indices, then
    dequantisation noise), fake labels and z, the penalty's alpha; then the generator step's labels and z.
    Returns (this rank's rows of each draw, what every rank shares: the generator's state)."""
    rows = []
    for _ in range(rounds):
        real, y = engine.dist.sample(engine.data, 8, engine.gen)
        b = len(real)
        rows += [real, y, engine.fake_labels(8), engine.noise(8),
                 interpolate(torch.zeros(b, 1, 1, 1), torch.ones(b, 1, 1, 1), engine.gen, engine.dist),
                 engine.fake_labels(16), engine.noise(16)]
    return rows, [engine.gen.get_state()]


def sampler_draws(make, group: Group, n: int, rounds: int) -> tuple[list, list]:
    """`rounds` global batches of n from a fresh sampler: (this rank's rows, [generator state, data cursor])."""
    data, gen = make(), torch.Generator().manual_seed(2)
    rows = []
    for _ in range(rounds):
        x, y = group.sample(data, n, gen)
        rows += [x] + ([y] if y is not None else [])
    state = data.state_dict()
    return rows, [gen.get_state()] + [state[k] for k in sorted(state)]


def assert_slices_concatenate(world: int, draw) -> None:
    """The rank slices of `draw(Group(rank, world))`, in rank order, are `draw(Group())`; shared state is equal."""
    rows, shared = draw(Group())
    parts = [draw(Group(rank, world)) for rank in range(world)]
    for i, whole in enumerate(rows):
        pieces = [part_rows[i] for part_rows, _ in parts]
        assert all(len(p) == len(whole) // world for p in pieces), (world, i)
        assert torch.equal(torch.cat(pieces), whole), (world, i)
    for _, part_shared in parts:
        assert all(torch.equal(a, b) for a, b in zip(part_shared, shared, strict=True)), world


@pytest.mark.parametrize("world", [1, 2, 4])
def test_rank_slices_of_every_draw_concatenate_to_the_one_process_draw(world, tmp_path):
    assert_slices_concatenate(world, lambda group: engine_draws(draw_engine(group)))
    # samplers the engine draws from: toy points (with a cursor), text (a permutation per epoch), streamed files
    assert_slices_concatenate(world, lambda group: sampler_draws(
        lambda: make_toy_data("25gaussians", seed=0), group, 8, 3))
    lines = torch.randint(0, 6, (10, 5), generator=torch.Generator().manual_seed(0))
    assert_slices_concatenate(world, lambda group: sampler_draws(lambda: TextSampler(lines, 6), group, 4, 5))
    write_pngs(tmp_path / "png", 20, size=8)
    rows = prepare(list_folder(tmp_path / "png"), tmp_path / "prepared", Decoding(8), workers=1)
    dataset = PreparedRows(rows.path, list(range(20)), np.array([i % 3 for i in range(20)]))
    assert_slices_concatenate(world, lambda group: sampler_draws(
        lambda: StreamImages(dataset, 8, "cpu", dequantize=True, seed=0, workers=0), group, 8, 5))   # 2 epochs


def test_streamed_ranks_read_only_their_rows(tmp_path):
    write_pngs(tmp_path / "png", 16, size=8)
    rows = prepare(list_folder(tmp_path / "png"), tmp_path / "prepared", Decoding(8), workers=1)
    read = []

    class CountedRows(PreparedRows):
        def __getitem__(self, i):
            read.append(i)
            return super().__getitem__(i)

    data = StreamImages(CountedRows(rows.path, list(range(16)), None), 8, "cpu", seed=0, workers=0)
    x, _ = Group(1, 4).sample(data, 8, torch.Generator())
    assert len(x) == 2 and len(read) == 2   # a quarter of the global batch of 8, not all of it
    assert data.state_dict()["cursor"].tolist() == [0, 8]   # the cursor moved by the global batch


def test_the_device_check_compares_what_a_seed_draws():
    assert distributed.rng_digest(torch.device("cpu"), 0) == distributed.rng_digest(torch.device("cpu"), 0)
    assert distributed.rng_digest(torch.device("cpu"), 0) != distributed.rng_digest(torch.device("cpu"), 1)
    assert Group(0, 4).block(7) == range(0, 2) and Group(3, 4).block(7) == range(6, 7)   # evaluation batches
    assert [list(Group(r, 4).block(2)) for r in range(4)] == [[0], [1], [], []]


# ---- refusals (before any rank waits for another) ----------------------------------------------------------------
def test_a_batch_that_does_not_split_over_the_ranks_is_refused_with_exit_code_2(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    r = CliRunner().invoke(app, ["toy", "--batch-size", "33", "--iters", "2", "--out", str(tmp_path / "run"),
                                 "--device", "cpu", "--quiet"])
    assert r.exit_code == 2, r.output
    assert "error: --batch-size 33 cannot be split over 2 ranks" in r.output and "hint: use a multiple of 2" in r.output
    assert not (tmp_path / "run").exists()
    with pytest.raises(UsageError, match="--gen-batch-size 50 cannot be split over 4 ranks"):
        check_batches(resolve_train(TrainConfig(batch_size=64, gen_batch_size=50)), 4)


def test_batchnorm_models_are_refused_on_the_cpu_with_several_ranks():
    from wgan_cli import models

    cfg = resolve_train(TrainConfig(batch_size=8))
    G, D = models.build({"arch": "dcgan", "dim": 4, "size": 32, "channels": 3})   # BatchNorm in G
    images, _ = dist_worker.random_images(16, 32, 0)
    engine = Engine(G, D, DeviceImages(images, None), cfg)
    with pytest.raises(UsageError, match="BatchNorm cannot be split over ranks on the CPU") as e:
        attach(Group(0, 2), engine, {})   # no process group exists: refused before any collective
    assert e.value.exit_code == 2 and engine.dist is distributed.LOCAL
    attach(Group(), engine, {})   # one process: nothing to refuse


# ---- 2 ranks x B/2 against 1 rank x B ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ranks_folder(tmp_path_factory):
    """The worker's output folder, with the prepared folder its "folder" setting draws from."""
    folder = tmp_path_factory.mktemp("ranks")
    write_pngs(folder / "png", dist_worker.FOLDER_IMAGES, size=32)
    prepare(list_folder(folder / "png"), folder / "prepared", Decoding(32), workers=1)
    return folder


@pytest.fixture(scope="module")
def traced(ranks_folder):
    """The worker's outputs on each of 2 ranks, and the same computed here in one process."""
    folder = ranks_folder
    t0 = time.perf_counter()
    rc, _, err = torchrun([str(ROOT / "tests" / "dist_worker.py"), str(folder)])
    assert rc == 0, err[-4000:]
    ranks = [load_file(str(folder / f"rank{r}.safetensors")) for r in range(2)]
    (folder / "one").mkdir()
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = dist_worker.trace_all(distributed.LOCAL, folder / "one", folder / "prepared")
    finally:
        torch.set_num_threads(n)
    print(f"2-rank worker and 1-rank reference: {time.perf_counter() - t0:.1f} s")
    return ranks, one


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))


def group_rel(found: dict, expected: dict, prefix: str) -> float:
    keys = sorted(k for k in expected if k.startswith(prefix))
    assert keys and all(k in found for k in keys)
    return rel(torch.cat([found[k].flatten() for k in keys]), torch.cat([expected[k].flatten() for k in keys]))


@pytest.mark.slow
def test_replicas_are_bitwise_identical_across_ranks(traced):
    (a, b), _ = traced
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k]) and not k.startswith("rank_only.")]
    assert not different, different


@pytest.mark.slow
@pytest.mark.parametrize("setting", SETTINGS)
def test_two_ranks_compute_the_gradients_of_one(traced, setting):
    """Gradients, not only parameters: Adam would hide a missing 1/W (it normalises the step)."""
    (two, _), one = traced
    for net in ("grad_d", "grad_g"):
        prefix = f"{setting}.{net}."
        err = group_rel(two, one, prefix)
        worst = max(rel(two[k], one[k]) for k in one if k.startswith(prefix))
        print(f"{setting} {net}: relative error {err:.2e} (worst tensor {worst:.2e})")
        assert err < 1e-5 and worst < 1e-4, (setting, net, err, worst)
        # the gradient is the mean over the global batch: twice or half of it would be far off
        assert group_rel({k: 2 * v for k, v in two.items()}, one, prefix) > 0.5


def compare_weights(a: dict, b: dict, lr: float, steps: int) -> tuple[float, float]:
    """Parameters of two runs whose gradients agree to rounding (test_two_ranks_compute_the_gradients_of_one):
    (the largest element difference, the share of elements that differ by more than NEAR).

    Why not element-wise: Adam divides the first moment by the square root of the second, so an element whose
    gradient is rounding noise (a dead ReLU, terms that cancel) moves by up to ~lr per step in either run, in any
    direction, whatever the code does. Elements with a real gradient get the same step up to the gradients'
    relative error (1e-5 above): they differ by at most lr * steps * 1e-5 < NEAR. So what holds on every machine
    is (1) no element further apart than Adam's step bound 2 * lr * steps and (2) the elements past NEAR, the
    rounding-level ones, a small share: a wrong gradient (another batch, a missing all-reduce) moves most of them."""
    worst, far, n_all = 0.0, 0, 0
    for key in a:
        diff = (a[key] - b[key]).abs()
        worst = max(worst, float(diff.max()))
        far, n_all = far + int((diff > NEAR).sum()), n_all + diff.numel()
    assert worst <= 2 * lr * steps, (worst, 2 * lr * steps)
    return worst, far / n_all


def sub(d: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in d.items() if k.startswith(prefix)}


LR, STEPS = 1e-3, {"toy": 18, "conv": 9, "cond": 9, "folder": 9, "augment": 9}   # the worker's lr; critic and generator steps in 3 iterations
NEAR = 1e-5      # > lr * steps * 1e-5 (1.8e-7): an element with a real gradient stays this close
RARE = 0.02      # rounding-level gradients are rare; a wrong gradient moves nearly every element past NEAR


@pytest.mark.slow
@pytest.mark.parametrize("setting", SETTINGS)
def test_two_ranks_train_like_one(traced, setting):
    (two, _), one = traced
    state_two, state_one = sub(two, f"{setting}.state."), sub(one, f"{setting}.state.")
    weights = [k for k in state_one if k.startswith(("G.", "D.", "G_ema."))]
    worst, share = compare_weights({k: state_two[k] for k in weights}, {k: state_one[k] for k in weights}, LR,
                                   STEPS[setting])
    print(f"{setting}: parameters after 3 iterations differ by at most {worst:.2e}; {share:.3%} of them by more "
          f"than {NEAR:g}")
    assert share <= RARE
    assert torch.equal(state_two["rng.engine"], state_one["rng.engine"])   # the same draws, in the same order
    first, rest = (two[f"{setting}.{k}"] - one[f"{setting}.{k}"] for k in ("stats_first_step", "stats"))
    first_err = float((first.abs() / one[f"{setting}.stats_first_step"].abs().clamp_min(1e-6)).max())   # gp may be 0
    print(f"{setting}: statistics of the first critic step differ by at most {first_err:.2e} (relative), of the "
          f"rest of the first iteration by {float(rest.abs().max()):.2e}")
    assert first_err < 1e-5
    assert float(rest.abs().max()) < 1e-4   # after Adam steps: the rounding-level elements above move the losses


@pytest.mark.slow
@pytest.mark.parametrize("setting", SETTINGS)
def test_a_two_rank_state_continues_on_one_rank(traced, ranks_folder, setting):
    """The state after 3 iterations on 2 ranks, loaded into one process, continues as the 2 ranks did."""
    (two, _), one = traced
    # copies: loading a state hands its optimiser tensors to Adam, which updates them in place, and the traced
    # results are shared with the other tests of this module (a later replica comparison saw them changed)
    continued = dist_worker.continue_from(setting, {k: v.clone() for k, v in sub(two, f"{setting}.state.").items()},
                                          ranks_folder / "prepared")
    weights = continued
    worst, share = compare_weights(weights, sub(two, f"{setting}.after."), LR, STEPS[setting])
    print(f"{setting}: the 2-rank state continued on 1 rank for 3 iterations: at most {worst:.2e} from the 2 ranks; "
          f"{share:.3%} of the elements by more than {NEAR:g}")
    assert share <= RARE
    again = dist_worker.continue_from(setting, {k: v.clone() for k, v in sub(one, f"{setting}.state.").items()},
                                      ranks_folder / "prepared")
    assert all(torch.equal(again[k], one[f"{setting}.after.{k}"]) for k in weights)


@pytest.mark.slow
def test_two_ranks_adjust_ada_like_one(traced):
    """ada's adjustment at iteration 4 from the ranks' rows of the training and held-out batches: the same p, and
    the same signal up to the rounding of means taken per rank and then over the ranks."""
    (two, other), one = traced
    p, signal = float(one["augment.ada_state"][0]), float(one["augment.ada_state"][1])
    assert p == 0.0 or p == pytest.approx(32 * 2 * 4 / 500_000, rel=1e-6)   # held at 0, or one step up
    assert signal != 0.0   # a signal was taken
    assert torch.equal(two["augment.ada_state"], other["augment.ada_state"])   # every rank: the same p and signal
    assert float(two["augment.ada_state"][0]) == p
    # means of 32 float32 scores per rank, then over the ranks, against one mean of 64: the gap and the estimate
    # each differ by float32 rounding of the scores (~1e-7 of them), far below 1e-4 of the signal
    assert abs(float(two["augment.ada_state"][1]) - signal) <= 1e-4 * max(1.0, abs(signal))


@pytest.mark.slow
def test_sharded_features_and_scores_equal_one_process(traced):
    (two, _), one = traced
    for key in ("feats.pool3", "feats.logits", "gen.pool3", "gen.logits"):
        assert two[key].shape == one[key].shape, key
        assert torch.allclose(two[key], one[key], rtol=0, atol=1e-6), key   # in the same order
    for key in ("metrics", "score", "eval", "val_w_dist"):
        print(f"{key}: 2 ranks {two[key].tolist()} vs 1 rank {one[key].tolist()}")
        assert torch.allclose(two[key], one[key], rtol=1e-6, atol=1e-6), key
    # the best generator is saved by rank 0 alone
    calls = [int(r["rank_only.on_best_calls"]) for r in traced[0]] + [int(one["rank_only.on_best_calls"])]
    assert calls == [1, 0, 1]


# ---- the command line under torchrun -----------------------------------------------------------------------------
TOY = ["-m", "wgan_cli", "toy", "--dataset", "25gaussians", "--iters", "100", "--batch-size", "64", "--dim", "32",
       "--depth", "2", "--log-every", "5", "--save-every", "50", "--plot-every", "1000", "--device", "cpu", "--plain"]


def step_rows(run: Path) -> list[int]:
    """The iterations of metrics.jsonl's step rows (a line still being written is skipped)."""
    path = run / "metrics.jsonl"
    return [row["step"] for row in read_jsonl(path) if row["event"] == "step"] if path.is_file() else []


def state_of(path: Path) -> dict:
    return checkpoint.load(path)[0]


@pytest.mark.slow
def test_torchrun_toy_one_writer_voted_stop_and_exact_resume(tmp_path):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    t0 = time.perf_counter()
    rc, out, err = torchrun([*TOY, "--out", str(straight)])
    assert rc == 0, err[-4000:]
    assert step_rows(straight) == list(range(5, 101, 5))   # each logged step once: one metrics.jsonl writer
    assert out.count('"w1"') == 1 and out.count("run directory:") == 1   # rank 0 reports
    assert sorted(p.name for p in straight.iterdir() if p.name.startswith("ckpt-")) == \
        ["ckpt-0000050.safetensors", "ckpt-0000100.safetensors"]
    assert not list(straight.glob(".rank0-*"))

    # SIGTERM to torchrun: forwarded to both ranks, which vote, save at the same step and exit 143 (recorded by
    # tests/rank_exit_code.sh: torchrun itself exits 1 after a signal)
    codes = tmp_path / "exit-codes.txt"
    proc = launch(["--no-python", str(ROOT / "tests" / "rank_exit_code.sh"), sys.executable, *TOY, "--out",
                   str(stopped)], RANK_EXIT_CODES=str(codes))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(s >= 5 for s in step_rows(stopped)):
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    rc, _, err = finish(proc, 120)
    lines = [line for line in err.splitlines() if line.startswith("error: interrupted at iteration")]
    assert len(lines) == 2 and lines[0] == lines[1], err[-4000:]   # both ranks, the same voted step
    step = int(lines[0].split("iteration ")[1].split(";")[0])
    assert rc != 0 and 5 <= step < 100, (rc, step)
    assert sorted(codes.read_text().split("\n")[:-1]) == ["0 143", "1 143"]
    saved = stopped / f"ckpt-{step:07d}.safetensors"
    assert checkpoint.read_meta(saved)["step"] == step
    single = tmp_path / "single"   # for the end: this 2-rank checkpoint resumed in one process
    single.mkdir()
    shutil.copy(saved, single / saved.name)

    # the same command again resumes and ends where the uninterrupted run ended, to the bit
    rc, _, err = torchrun([*TOY, "--out", str(stopped)])
    assert rc == 0, err[-4000:]
    a, b = state_of(straight / "ckpt-0000100.safetensors"), state_of(stopped / "ckpt-0000100.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    print(f"torchrun: straight, stopped at {step}, resumed: {time.perf_counter() - t0:.1f} s")

    # the 2-rank checkpoint resumes in one process (no torchrun) at the step it was saved
    from wgan_cli.runs import train_run
    from wgan_cli.toy import ToyTask

    opts = ToyOptions(dataset="25gaussians", dim=32, depth=2, plot_every=1000)
    cfg = TrainConfig(batch_size=64, iters=step + 3)
    train_run(ToyTask(opts), cfg, RunOptions(out=str(single), device="cpu", log_every=1, save_every=1000))
    assert step_rows(single) == [step + 1, step + 2, step + 3]


# ---- a GPU ---------------------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_syncbatchnorm_resnet_two_ranks_on_one_gpu(tmp_path):
    """The BatchNorm generator of Appendix F: 2 ranks x 32 on one GPU (Gloo) against 1 x 64, TF32 off."""
    rc, _, err = torchrun([str(ROOT / "tests" / "dist_gpu_worker.py"), str(tmp_path)], timeout=400)
    assert rc == 0, err[-4000:]
    two = load_file(str(tmp_path / "rank0.safetensors"))
    other = load_file(str(tmp_path / "rank1.safetensors"))
    assert all(torch.equal(two[k], other[k]) for k in two)
    import dist_gpu_worker

    one = dist_gpu_worker.trace_resnet(Group(device="cuda"))
    for key in one:
        assert rel(two[key].cpu(), one[key].cpu()) < 1e-4, key
