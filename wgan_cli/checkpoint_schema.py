"""The schema of a checkpoint's header, checked before any tensor is read (the file is untrusted input):
`validate_meta` (types, allowed values, bounded sizes of the metadata; the model spec against the architecture
records) and `validate_tensors` (the tensor names, dtypes and shapes in the header against those of the model
the spec builds on the `meta` device, so nothing is allocated). Anything wrong is a CheckpointError (exit 4).
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import re
from pathlib import Path

import torch

from wgan_cli import models
from wgan_cli.bounds import WIDTH
from wgan_cli.config import TextOptions, ToyOptions
from wgan_cli.fields import range_of
from wgan_cli.errors import CheckpointError, WganError
from wgan_cli.models.init import INITS

FORMAT = "wgan-checkpoint"
VERSION = 2          # 2: the digest covers the metadata too; 1: tensors only (read, with a note)
READABLE = (1, 2)
KINDS = ("train-state", "generator")
TASKS = ("toy", "image", "text")
DAMAGED_HINT = "the file is damaged or was not written by wgan; use an earlier checkpoint"
# The `extra` key of an image checkpoint that holds its generator's pixel range ("tanh" or "sigmoid"). The key
# keeps its first name, "output", so that existing checkpoints and older readers keep working; this is the one
# place that names it (written by image.py, read here).
PIXEL_RANGE_KEY = "output"
PIXEL_RANGES = ("tanh", "sigmoid")

# ---- the metadata ----------------------------------------------------------------------------
# model spec keys: (lowest, highest) for integers, or the allowed values
# sizes that are options take their range from the option's declaration (config.py)
_OPTION_SIZES = {"dim": WIDTH, "depth": range_of(ToyOptions, "depth"),
                 "vocab_size": range_of(TextOptions, "vocab_size"),
                 "seq_len": range_of(TextOptions, "seq_len")}
SPEC_INTS = {**{k: (int(r.lo), int(r.hi)) for k, r in _OPTION_SIZES.items()}, "z_dim": (1, 2**16),
             "data_dim": (1, 1024), "n_classes": (1, 2**16), "n_blocks": (1, 64), "per_res": (1, 64),
             "fc_dim": (1, 2**16)}
MAX_STEP = 2**62
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def _bad(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"{path}: invalid checkpoint header: {what}", DAMAGED_HINT)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _small_value(v) -> bool:
    return (isinstance(v, bool) or (_is_int(v) and 0 <= v <= 2**16) or (isinstance(v, str) and len(v) <= 64)
            or (isinstance(v, float) and math.isfinite(v) and abs(v) <= 2**16))


def validate_spec(spec, task: str, path: Path) -> None:
    """The model spec: a known architecture of this task, only its builder's arguments, each bounded."""
    if not isinstance(spec, dict):
        raise _bad(path, "'model' is not an object")
    arch_name = spec.get("arch")
    arch = models.ARCHS.get(arch_name) if isinstance(arch_name, str) else None
    if arch is None or arch.task != task:
        raise _bad(path, f"unknown architecture {arch_name!r} for a {task} model")
    allowed = set(inspect.signature(arch.build).parameters) | {"arch", "init"}
    if task == "toy":
        allowed.add("fixed_generator")
    for key, value in spec.items():
        if key not in allowed:
            raise _bad(path, f"model key {key!r} is not an argument of {arch_name}")
        if key == "arch":
            continue
        if key == "fixed_generator":
            ok = isinstance(value, bool)
        elif key == "size":
            ok = _is_int(value) and (value in arch.sizes if arch.sizes else 1 <= value <= 4096)
        elif key == "channels":
            ok = _is_int(value) and value in (1, 3)
        elif key == "init":
            ok = value in INITS
        elif key == "critic_norm":
            ok = value in models.CRITIC_NORMS
        elif key == "variant":
            ok = isinstance(value, str) and value in arch.variants
        elif key in SPEC_INTS:
            lo, hi = SPEC_INTS[key]
            ok = _is_int(value) and lo <= value <= hi
        else:   # another builder argument: a small plain value (the tensors bound the model's size anyway)
            ok = _small_value(value) or (isinstance(value, list) and len(value) <= 64
                                         and all(_small_value(v) for v in value))
        if not ok:
            raise _bad(path, f"model {key} = {json.dumps(value)[:40]} is out of range for {arch_name}")


def validate_meta(meta, path: Path) -> dict:
    """The whole metadata against its schema; returns it."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a wgan checkpoint", "use a checkpoint written by wgan")
    version = meta.get("version")
    if _is_int(version) and version > VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {version} is newer than this wgan reads "
                              f"(versions {', '.join(map(str, READABLE))})", "upgrade wgan")
    if version not in READABLE or not _is_int(version):
        raise _bad(path, f"version {json.dumps(version)[:20]}")
    for key, kind in (("kind", str), ("task", str), ("model", dict), ("train", dict), ("extra", dict),
                      ("versions", dict), ("digest", str)):
        if not isinstance(meta.get(key), kind):
            raise _bad(path, f"{key!r} is missing or not a{'n object' if kind is dict else ' string'}")
    if meta["kind"] not in KINDS:
        raise _bad(path, f"unknown kind {meta['kind'][:20]!r}")
    if meta["task"] not in TASKS:
        raise _bad(path, f"unknown task {meta['task'][:20]!r}")
    step = meta.get("step")
    if not _is_int(step) or not 0 <= step <= MAX_STEP:
        raise _bad(path, f"step {json.dumps(step)[:20]}")
    if not SHA256_RE.match(meta["digest"]):
        raise _bad(path, "the digest is not a SHA-256 hex string")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta["versions"].items()):
        raise _bad(path, "'versions' holds non-strings")
    validate_spec(meta["model"], meta["task"], path)
    _validate_extra(meta, path)
    return meta


def _validate_extra(meta: dict, path: Path) -> None:
    extra, model = meta["extra"], meta["model"]
    for key in ("dataset", "corpus"):
        if key in extra and not isinstance(extra[key], str):
            raise _bad(path, f"extra {key} is not a string")
    if PIXEL_RANGE_KEY in extra and extra[PIXEL_RANGE_KEY] not in PIXEL_RANGES:
        raise _bad(path, f"extra {PIXEL_RANGE_KEY} (the pixel range) is neither tanh nor sigmoid")
    if "fid" in extra and extra["fid"] is not None and not isinstance(extra["fid"], (int, float)):
        raise _bad(path, "extra fid is not a number")
    if meta["task"] == "text":
        vocab = extra.get("vocab")
        if not (isinstance(vocab, list) and len(vocab) == model.get("vocab_size") and vocab and vocab[0] == ""
                and all(isinstance(c, str) and len(c) == 1 for c in vocab[1:]) and len(set(vocab)) == len(vocab)):
            raise _bad(path, "the character map is missing, malformed or does not match the model's vocab_size")
        if extra.get("seq_len") != model.get("seq_len"):
            raise _bad(path, "extra seq_len differs from the model's")
        if not (isinstance(extra.get("pad"), str) and len(extra["pad"]) == 1):
            raise _bad(path, "the padding character is missing")


# ---- the tensors in the header, against the model the spec builds ------------------------------------------
DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
          torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
          torch.bool: "BOOL"}
OPT_STATE = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "square_avg", "momentum_buffer", "grad_avg")
FLOATS = ("F32", "F16", "BF16", "F64")
MAX_SMALL = 1 << 16   # elements of an RNG state or a data cursor


def expected_tensors(meta: dict) -> tuple[dict[str, tuple[str, tuple]], dict[str, tuple[tuple, tuple]]]:
    """(exact: name -> (dtype, shape), optional: name -> (dtypes, shape)) of a checkpoint of this metadata,
    from the model built on the meta device (no memory is allocated, whatever the sizes)."""
    return _expected(json.dumps(meta["model"], sort_keys=True), meta["kind"])


@functools.lru_cache(maxsize=16)   # resume tries several checkpoints of one model
def _expected(model_json: str, kind: str):
    meta = {"model": json.loads(model_json), "kind": kind}
    with torch.device("meta"):
        G, D = models.build(meta["model"])
    if meta["model"].get("fixed_generator"):
        G = torch.nn.Module()   # Figure 1a's generator is the data plus noise: no weights
    exact = {f"G.{k}": (DTYPES.get(v.dtype, "?"), tuple(v.shape)) for k, v in G.state_dict().items()}
    optional: dict[str, tuple[tuple, tuple]] = {}
    ema = {f"G_ema.{k[2:]}": v for k, v in exact.items()}
    if meta["kind"] == "train-state":
        exact.update({f"D.{k}": (DTYPES.get(v.dtype, "?"), tuple(v.shape)) for k, v in D.state_dict().items()})
        for prefix, net in (("opt_d.", D), ("opt_g.", G)):
            for name, p in net.named_parameters():
                optional[f"{prefix}{name}.step"] = (FLOATS + ("I64",), ())
                for key in OPT_STATE:
                    optional[f"{prefix}{name}.{key}"] = (FLOATS, tuple(p.shape))
    return exact, {**optional, **{k: ((dtype,), shape) for k, (dtype, shape) in ema.items()}}


def validate_tensors(header: dict, meta: dict, path: Path) -> None:
    """Every tensor entry of the header: well formed, and exactly the model's (optimiser state, RNG state,
    data cursor and an EMA copy where a run keeps them); refused before any tensor is read."""
    entries = {k: v for k, v in header.items() if k != "__metadata__"}
    for name, e in entries.items():
        if not (isinstance(e, dict) and isinstance(e.get("dtype"), str) and isinstance(e.get("shape"), list)
                and all(_is_int(d) and d >= 0 for d in e["shape"]) and len(e["shape"]) <= 8):
            raise _bad(path, f"tensor entry {name[:60]!r} is malformed")
    try:
        exact, optional = expected_tensors(meta)
    except (WganError, TypeError, ValueError, RuntimeError) as e:   # a spec its builder refuses
        raise _bad(path, f"the model cannot be built ({getattr(e, 'message', e)})") from None
    missing = [k for k in exact if k not in entries]
    if missing:
        raise _bad(path, f"tensor {missing[0]!r} of the model is missing ({len(missing)} missing)")
    has_ema = any(k.startswith("G_ema.") for k in entries)
    for name, e in entries.items():
        shape = tuple(e["shape"])
        if name in exact:
            ok = (e["dtype"], shape) == exact[name]
        elif name in optional:
            dtypes, want = optional[name]
            ok = e["dtype"] in dtypes and shape == want
        elif name == "rng.engine" and meta["kind"] == "train-state":
            ok = e["dtype"] == "U8" and len(shape) == 1 and 0 < shape[0] <= MAX_SMALL
        elif name == "augment.state" and meta["kind"] == "train-state":   # augment.Augmenter.STATE
            ok = e["dtype"] == "F32" and len(shape) == 1 and 0 < shape[0] <= 64
        elif name.startswith("data.") and meta["kind"] == "train-state":
            ok = e["dtype"] in ("I64", "U8") and len(shape) <= 2 and _numel(shape) <= MAX_SMALL
        else:
            raise _bad(path, f"unexpected tensor {name[:60]!r} for a {meta['model']['arch']} {meta['kind']}")
        if not ok:
            raise _bad(path, f"tensor {name[:60]!r} is {e['dtype']} {list(shape)}, which does not fit the model")
    if has_ema and any(f"G_ema.{k[2:]}" not in entries for k in exact if k.startswith("G.")):
        raise _bad(path, "the EMA generator is incomplete")
    if meta["kind"] == "train-state" and "rng.engine" not in entries:
        raise _bad(path, "the train state has no RNG state")


def _numel(shape: tuple) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
