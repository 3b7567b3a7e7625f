"""The compiled Inception network (metrics/fastpath.py): the same features as the eager network, compiled only
where it pays, and eager with one note where compiling fails or is switched off.

The decision tests run a real FIDInception whose pool3 is replaced by a cheap function of the same shape (the
299x299 network costs a second per image here), and a stand-in for torch.compile that records what it was asked
and runs the eager function: they check *when* the network is compiled and what is recorded. The real compile
happens once per test session (the `compiled_inception` fixture), where the numbers are checked.
"""

import json

import pytest
import torch

from wgan_cli.metrics import fastpath
from wgan_cli.metrics.features import extract, tensor_source
from wgan_cli.metrics.inception import FIDInception
from wgan_cli.metrics.scores import frechet_distance, statistics

CPU = torch.device("cpu")


def images(n, seed=0, size=8):
    return torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def cheap_net():
    """A real FIDInception (input pipeline, logits head) whose pool3 is a cheap function of its input."""
    torch.manual_seed(0)
    net = FIDInception(with_logits=True).eval().requires_grad_(False)
    net.pool3 = lambda x: x[:, :, :32, :64].reshape(len(x), -1)[:, :2048] * 2.0   # (N, 2048), depends on the image
    return net


@pytest.fixture
def compiler(monkeypatch, tmp_path):
    """torch.compile replaced by a recorder whose 'compiled' function is the eager one; an empty wgan cache.
    Each call records its batch and the inductor settings its thread had (what a real compile would read)."""
    from torch._inductor import config

    monkeypatch.setenv("WGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    seen = {"compiles": [], "calls": [], "settings": set()}

    def fake_compile(fn, **kwargs):
        seen["compiles"].append(kwargs)

        def compiled(x):
            seen["calls"].append(len(x))
            seen["settings"].add((config.freezing, config.cpp_wrapper, config.cpp.weight_prepack))
            return fn(x)

        return compiled

    monkeypatch.setattr(torch, "compile", fake_compile)
    return seen


def run_pass(net, x, batch):
    return extract(net, tensor_source(x, "test"), batch, CPU)


def eager_pass(net, x, batch):
    """The plain network over the same batches (a matmul's rounding depends on its batch: compare like with like)."""
    with torch.inference_mode():
        outs = [net(x[i: i + batch]) for i in range(0, len(x), batch)]
    return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])


def test_the_decision_is_the_arithmetic_of_measured_costs():
    # nothing recorded: eager 1 s per batch of 10 (10 images/s); the reference's compile takes as long as
    # REFERENCE.compile_images eager images, and the compiled network is REFERENCE.speedup times faster
    ref = fastpath.REFERENCE
    cost = ref.compile_images / 10
    breakeven = cost / (1 / 10 - 1 / (10 * ref.speedup))   # images whose eager-minus-compiled time equals it
    go, got_cost = fastpath.should_compile(remaining=int(breakeven) + 1, batch=10, eager_batch_s=1.0, entry={})
    assert got_cost == pytest.approx(cost) and go
    assert not fastpath.should_compile(remaining=int(breakeven) - 1, batch=10, eager_batch_s=1.0, entry={})[0]
    # a machine twice as slow expects a compile twice as long: the same break-even number of images
    assert fastpath.should_compile(int(breakeven) - 1, 10, 2.0, {}) == (False, pytest.approx(2 * cost))
    # recorded here: a cached start as long as 20 eager images (2 s at 10 images/s), compiled 5x faster:
    # 20 images save 2 - 0.4 = 1.6 s < 2 s, 30 save 3 - 0.6 = 2.4 s > 2 s
    entry = {"compile_images": 3000.0, "cached_images": 20.0, "speedup": 5.0}
    assert fastpath.should_compile(20, 10, 1.0, entry) == (False, pytest.approx(2.0))
    assert fastpath.should_compile(30, 10, 1.0, entry) == (True, pytest.approx(2.0))
    # the same record on a machine twice as busy now (eager 5 images/s): the same number of images pays
    assert fastpath.should_compile(30, 10, 2.0, entry) == (True, pytest.approx(4.0))
    # compiled once, no cached start measured yet: the reference's cached share of that first compile
    once = fastpath.should_compile(10**6, 10, 1.0, {"compile_images": 3000.0, "speedup": 5.0})
    assert once == (True, pytest.approx(300.0 * ref.cached_share))
    # on a GPU, before any measurement, the compile is host work: the reference's seconds, not eager-image times
    assert fastpath.should_compile(10, 10, 0.01, {}, "cuda") == (False, pytest.approx(ref.host_compile_s))
    # a machine where the compiled network is not faster never compiles
    assert not fastpath.should_compile(10**9, 10, 1.0, {"cached_images": 0.0, "speedup": 1.0})[0]


def test_few_images_are_scored_eagerly_and_many_compile_once(cheap_net, compiler):
    x = images(12)
    few = fastpath.FastInception(cheap_net, "auto")
    eager = eager_pass(cheap_net, x[:2], 1)
    got = run_pass(few, x[:2], 1)
    assert compiler["compiles"] == [] and not few.is_compiled
    torch.testing.assert_close(got.pool3, eager[0], rtol=0, atol=0)
    torch.testing.assert_close(got.logits, eager[1], rtol=0, atol=0)

    # measured here before: a free cached start and a compiled network far faster than eager: 11 images pay
    fastpath.record(fastpath.costs_path(), CPU, 1, cached_images=0.0, speedup=1e6)
    many = fastpath.FastInception(cheap_net, "auto")
    got = run_pass(many, x, 1)
    assert compiler["compiles"] == [{"backend": "inductor", "dynamic": False}]
    assert compiler["calls"] == [1] * 11     # the first batch eagerly (timed), then every batch compiled
    # every compiled call with the weights frozen, not prepacked (oneDNN's tensors would keep it out of the cache)
    assert compiler["settings"] == {(True, False, False)}
    torch.testing.assert_close(got.pool3, eager_pass(cheap_net, x, 1)[0], rtol=0, atol=0)
    entry = fastpath.recorded(CPU, 1)
    assert entry["compile_s"] >= 0 and entry["compile_images"] >= 0
    assert entry["eager_ips"] > 0 and entry["fast_ips"] > 0
    assert entry["speedup"] == pytest.approx(entry["fast_ips"] / entry["eager_ips"], rel=1e-2)   # rounded to 3 places
    run_pass(many, x, 1)   # a second pass (the reference): the same compiled graph, no new compile
    assert len(compiler["compiles"]) == 1


def test_a_short_last_batch_is_padded_to_the_compiled_size(cheap_net, compiler):
    net = fastpath.FastInception(cheap_net, "on")
    x = images(10)
    got = run_pass(net, x, 4)   # batches 4, 4, 2: the last one padded to 4 and cut back
    assert compiler["calls"] == [4, 4, 4]
    torch.testing.assert_close(got.pool3, eager_pass(cheap_net, x, 4)[0], rtol=0, atol=0)


def test_on_several_cpu_threads_batches_are_split_over_one_thread_workers(cheap_net, compiler, monkeypatch):
    """Two workers: each batch of 4 runs as two chunks of 2 at once, each in a worker with one intra-op thread;
    the graph is compiled for a chunk, with the C++ wrapper (no interpreter lock while a chunk runs)."""
    import threading

    seen = []
    compiled_chunk = cheap_net.pool3
    lock = threading.Lock()
    together = threading.Barrier(2, timeout=60)

    def recording(x):
        with lock:
            seen.append((threading.current_thread().name, torch.get_num_threads(), len(x)))
            call = len(seen) - 1
        if call in (2, 3):   # the second batch's two chunks: each waits for the other, so they must run at once
            together.wait()
        return compiled_chunk(x)

    monkeypatch.setattr(cheap_net, "pool3", recording)
    saved = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        net = fastpath.FastInception(cheap_net, "on", workers=2)
        # the process's own count is back, for this thread and for threads started later
        assert torch.get_num_threads() == 3
        later = []
        t = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
        t.start()
        t.join()
        assert later == [3]
        x = images(10)
        got = run_pass(net, x, 4)   # batches 4, 4, 2
    finally:
        torch.set_num_threads(saved)
    assert compiler["compiles"] == [{"backend": "inductor", "dynamic": False}]
    # inductor's settings belong to each thread: the workers' calls had them, frozen and with the C++ wrapper
    assert compiler["settings"] == {(True, True, False)}
    # the first batch: the compile on one chunk, then its other chunk; the second: two chunks at once (they met at
    # the barrier, on two workers); the last batch of 2 is one chunk
    assert compiler["calls"] == [2] * 5
    assert all(name.startswith("wgan-inception") and threads == 1 and n == 2 for name, threads, n in seen), seen
    assert seen[2][0] != seen[3][0]
    torch.testing.assert_close(got.pool3, eager_pass(cheap_net, x, 4)[0], rtol=0, atol=0)


def test_eager_batches_are_split_too_and_uneven_chunks_need_no_padding(cheap_net, compiler):
    net = fastpath.FastInception(cheap_net, "off", workers=3)
    seen = []
    chunk = cheap_net.pool3
    cheap_net.pool3 = lambda x: seen.append(len(x)) or chunk(x)
    x = images(9)
    got = run_pass(net, x, 5)   # batches of 5 and 4: chunks 2, 2, 1 and 2, 1, 1 (the workers' order varies)
    assert sorted(seen) == [1, 1, 1, 2, 2, 2] and compiler["compiles"] == []
    torch.testing.assert_close(got.pool3, eager_pass(cheap_net, x, 5)[0], rtol=0, atol=0)


def test_no_split_on_one_thread():
    assert fastpath.split_for(CPU, 1) is None
    assert fastpath.split_for(torch.device("cuda"), 4) is None
    two = fastpath.split_for(CPU, 2)
    assert two is fastpath.split_for(CPU, 2) and two.n == 2   # one pool per size, shared
    assert [two.unit(b) for b in (1, 2, 5, 50)] == [1, 1, 3, 25]


def test_recorded_costs_that_do_not_pay_keep_it_eager(cheap_net, compiler):
    fastpath.record(fastpath.costs_path(), CPU, 1, compile_images=1e9, cached_images=1e9, speedup=4.0)
    net = fastpath.FastInception(cheap_net, "auto")
    run_pass(net, images(20), 1)
    assert compiler["compiles"] == [] and not net.is_compiled


def test_off_never_compiles(cheap_net, compiler):
    run_pass(fastpath.FastInception(cheap_net, "off"), images(50), 1)
    assert compiler["compiles"] == []


def test_a_failed_compile_falls_back_to_eager_with_one_note_and_is_not_retried(cheap_net, compiler, monkeypatch):
    def broken(fn, **kwargs):
        def compiled(x):
            raise RuntimeError("InductorError: C++ compile error\nmore detail")
        return compiled

    monkeypatch.setattr(torch, "compile", broken)
    said = []
    x = images(6)
    got = run_pass(fastpath.FastInception(cheap_net, "on", said.append), x, 2)
    torch.testing.assert_close(got.pool3, eager_pass(cheap_net, x, 2)[0], rtol=0, atol=0)
    failed = [s for s in said if "network failed" in s]
    assert len(failed) == 1 and "RuntimeError: InductorError: C++ compile error" in failed[0]
    assert "scoring eagerly" in failed[0] and "more detail" not in failed[0]
    assert fastpath.recorded(CPU, 2)["failed"] == torch.__version__
    said.clear()
    again = fastpath.FastInception(cheap_net, "auto", said.append)
    run_pass(again, images(200), 2)
    assert not again.is_compiled and len(said) == 1 and "failed here before" in said[0]


def test_no_cxx_compiler_is_found_before_anything_is_traced(cheap_net, compiler, monkeypatch):
    monkeypatch.setattr(fastpath.shutil, "which", lambda name: None)
    said = []
    net = fastpath.FastInception(cheap_net, "on", said.append)
    run_pass(net, images(4), 2)
    assert compiler["compiles"] == [] and said == [
        "not compiling the Inception network: no C++ compiler found (inductor needs g++ or clang++ for the CPU); "
        "scoring eagerly"]


def test_an_unreadable_costs_file_is_ignored_and_rewritten(cheap_net, compiler):
    fastpath.costs_path().parent.mkdir(parents=True)
    fastpath.costs_path().write_text("{not json")
    run_pass(fastpath.FastInception(cheap_net, "off"), images(3), 3)
    assert json.loads(fastpath.costs_path().read_text())[fastpath.machine_key(CPU, 3)]["eager_ips"] > 0


# ---- the real compiled network (compiled once per session) ---------------------------------------------------
@pytest.mark.slow
def test_compiled_features_equal_the_eager_network_within_fp32_rounding(compiled_inception, tmp_path, monkeypatch):
    """Eager and compiled compute the same sums in other orders (and BatchNorm folded into the weights). Per
    layer that moves a value by about sqrt(K) * 2^-24 of its scale (K <= 4032 products summed: 3x3x448), about
    4e-6; along the longest path (about 40 layers) the independent roundings add up like a random walk, sqrt(40)
    times: about 2.4e-5 of the features' scale. The bound allows 4x that: 1e-4 of the largest feature."""
    weights, fast = compiled_inception
    batch = fast.batch   # the size it was compiled for
    monkeypatch.setenv("WGAN_CACHE_DIR", str(tmp_path))   # the eager pass records its rate: not in the user's cache
    eager = fastpath.FastInception(fast.net, "off")
    x = images(batch + 8, seed=3, size=28)   # one full batch and one padded batch
    a = extract(fast, tensor_source(x, "x"), batch, CPU).pool3
    b = extract(eager, tensor_source(x, "x"), batch, CPU).pool3
    bound = 1e-4 * b.abs().max()
    assert (a - b).abs().max() <= bound
    assert b.abs().mean() > 0.05     # real features
    # and the number users read: FID of the two sets against a third, from either path
    ref = statistics(extract(fast, tensor_source(images(batch + 8, seed=4, size=28), "r"), batch, CPU).pool3)
    fid_fast, fid_eager = frechet_distance(*statistics(a), *ref), frechet_distance(*statistics(b), *ref)
    assert fid_eager > 1 and abs(fid_fast - fid_eager) / fid_eager < 1e-4


@pytest.mark.slow
def test_the_compiled_network_holds_its_weights_as_constants(compiled_inception):
    """Frozen: the weights are constants of the compiled graph (BatchNorm folded into them), not inputs read at
    every call. Doubling the first convolution's weights in place changes the eager features and leaves the
    compiled ones exactly as they were."""
    _, fast = compiled_inception
    with torch.inference_mode():
        x = fast.net.input(images(fast.unit, seed=5, size=28))
    weight = fast.net.Conv2d_1a_3x3.conv.weight
    saved = weight.detach().clone()
    before = fast.split.one(fast.compiled, x)   # as the fixture runs it: on a worker
    with torch.inference_mode():
        eager_before = fast.net.pool3(x)
    try:
        with torch.no_grad():
            weight.mul_(2)
        after = fast.split.one(fast.compiled, x)
        with torch.inference_mode():
            eager_after = fast.net.pool3(x)
    finally:
        with torch.no_grad():
            weight.copy_(saved)   # the shared network, as it was (bit for bit)
    assert (eager_after - eager_before).abs().max() > 0.1 * eager_before.abs().max()
    torch.testing.assert_close(after, before, rtol=0, atol=0)


@pytest.mark.slow
def test_the_compiled_network_is_written_to_the_compile_cache(compiled_inception, tmp_path_factory):
    """Later runs start from the cache: the frozen graph's weights are plain tensors (oneDNN's prepacked tensors
    cannot be pickled, and inductor leaves such a graph out of its cache)."""
    assert compiled_inception[1].is_compiled
    caches = list(tmp_path_factory.getbasetemp().glob("compiled-inception[0-9]*/inductor/fxgraph"))
    assert len(caches) == 1 and any(p.is_file() for p in caches[0].rglob("*"))


def test_in_training_evaluation_compiles_where_it_pays_and_says_so(cheap_net, compiler, monkeypatch):
    """The callback of `wgan train --eval-metrics` runs the network through the same fast path; what the fast path
    says (here: a failed compile) comes out as a Note event, once, and the scores are still made."""
    from types import SimpleNamespace

    from conftest import TinyImageG
    from wgan_cli.events import Evaluated, Note
    from wgan_cli.metrics import evaluate, weights

    def broken(fn, **kwargs):
        def compiled(x):
            raise RuntimeError("no C++ toolchain")
        return compiled

    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(weights, "resolve_weights", lambda *a, **k: weights.Weights({}, True, "test", "test0001"))
    monkeypatch.setattr(weights, "load_network", lambda w, device="cpu": cheap_net)
    fastpath.record(fastpath.costs_path(), CPU, 4, cached_images=0.0, speedup=1e6)   # it pays
    G = TinyImageG()   # (4,) noise -> tanh (1, 8, 8) images
    cb, _ = evaluate.eval_callback(every=1, n=12, metrics="is", ref=None, device="cpu", generator=lambda engine: G,
                                   batch_size=4, splits=2)
    engine = SimpleNamespace(step=1)
    first, second = list(cb.fn(engine, False)), list(cb.fn(engine, False))
    notes = [e.text for e in first if isinstance(e, Note)]   # the announcement, then the one line of the fallback
    assert len(notes) == 2 and notes[0].startswith("eval: compiling the Inception network for this machine")
    assert notes[1] == "eval: compiling the Inception network failed (RuntimeError: no C++ toolchain); scoring eagerly"
    assert not any(isinstance(e, Note) for e in second)    # not tried again in the same run
    assert [isinstance(e, Evaluated) and e.metrics["is"] >= 1 for e in first + second].count(True) == 2


def test_train_no_compile_scores_eagerly(cheap_net, compiler, monkeypatch):
    """`wgan train --no-compile` reaches the evaluation: no compile even where the recorded costs say it pays."""
    from conftest import TinyImageG
    from types import SimpleNamespace

    from wgan_cli.events import Evaluated
    from wgan_cli.metrics import evaluate, weights

    monkeypatch.setattr(weights, "resolve_weights", lambda *a, **k: weights.Weights({}, True, "test", "test0001"))
    monkeypatch.setattr(weights, "load_network", lambda w, device="cpu": cheap_net)
    fastpath.record(fastpath.costs_path(), CPU, 4, cached_images=0.0, speedup=1e6)   # it would pay
    G = TinyImageG()
    for compile, compiles in ((False, 0), (True, 1)):
        cb, _ = evaluate.eval_callback(every=1, n=12, metrics="is", ref=None, device="cpu",
                                       generator=lambda engine: G, batch_size=4, splits=2, compile=compile)
        events = list(cb.fn(SimpleNamespace(step=1), False))
        assert any(isinstance(e, Evaluated) for e in events)
        assert len(compiler["compiles"]) == compiles, compile
