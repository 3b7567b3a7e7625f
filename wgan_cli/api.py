"""A trained generator as a Python object: the one way in for notebooks, other programs and `wgan sample`.

    import wgan_cli
    G = wgan_cli.load("runs/cifar/generator.safetensors", ema=False, device="cpu")
    images = G.sample(16, seed=0)            # uint8 (16, H, W, C), exactly as `wgan sample` saves them
    G.spec                                   # task, architecture, size, channels, classes, z_dim, digest
    G.module                                 # the torch module: (z, classes) -> images in spec.pixel_range

Seeds: image k is drawn from its own torch.Generator (on the CPU), seeded with `seeds[k]`, so it is the same
whatever else is drawn with it, in whatever batch size, on whatever device. `G.sample(n, seed=S)` draws the seeds
S, S+1, ..., S+n-1 (as StyleGAN's `--seeds S-(S+n-1)`): image k of `sample(64)` is `sample(seeds=[k])`, and
`sample(n, seed=S)` and `sample(n, seed=S+1)` share n-1 images; for an independent set take S at least n further.
Seeds are 32-bit (torch's CPU generator, a Mersenne Twister, keeps 32 bits of its seed), so they run modulo 2^32.
From each seed's generator: z ~ N(0, I) (z_dim values), then for a conditional model drawing
random classes, the class (uniform), then with `truncation` T, fresh draws for the components beyond |T|.

Errors are wgan's own (errors.py): CheckpointError for a checkpoint that cannot be used, UsageError for a request
the model cannot meet; their messages name the argument, never a command-line flag.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from wgan_cli import checkpoint, models
from wgan_cli.data.pixels import to_uint8
from wgan_cli.errors import CheckpointError, UsageError

TASKS = ("image", "toy", "text")
PRIOR = "normal"               # every wgan generator draws z ~ N(0, I) (models.latents)
SEEDS = 2**32                  # torch's CPU generator (mt19937) keeps the low 32 bits of its seed
MAX_SEED = SEEDS - 1
TRUNCATION_MIN = 0.05          # below this almost every component is redrawn (P(|z| <= 0.05) = 4%)
BATCH = 500                    # rows drawn and returned per chunk of a stream (bounded memory whatever n is)
FORWARD = 64                   # rows per forward pass, always: the last block is padded (see Generator.generate)


@dataclass(frozen=True)
class Spec:
    """What a generator is, from its checkpoint's metadata alone."""
    task: str                          # image | toy | text
    arch: str
    z_dim: int
    n_classes: int                     # 0: unconditional
    size: int | None = None            # image side in pixels (image task)
    channels: int | None = None        # 1 or 3 (image task)
    pixel_range: str | None = None     # "tanh" ([-1, 1]) or "sigmoid" ([0, 1]) (image task)
    seq_len: int | None = None         # characters per line (text task)
    vocab: tuple[str, ...] | None = None   # the character map, index -> character; vocab[0] is unk (text task)
    prior: str = PRIOR
    ema: bool = False                  # the EMA copy of G was loaded
    step: int = 0                      # generator iterations trained
    digest: str = ""                   # the checkpoint's SHA-256 (tensors and metadata)
    model: dict = field(default_factory=dict)   # the model spec that rebuilds G (models.build)

    def to_json(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["vocab"] = list(self.vocab) if self.vocab is not None else None
        return d

    @property
    def shape(self) -> tuple[int, ...]:
        """One sample's shape as `sample` returns it: (H, W, C), (2,) or (seq_len,)."""
        if self.task == "image":
            return (self.size, self.size, self.channels)
        if self.task == "text":
            return (self.seq_len,)
        return (self.model.get("data_dim", 2),)


@dataclass(frozen=True)
class Batch:
    """One chunk of a stream: the seeds (None for given latents), latents, classes and samples of its rows."""
    seeds: list[int] | None
    z: torch.Tensor                    # (B, z_dim) float32, CPU
    classes: torch.Tensor | None       # (B,) int64, CPU
    samples: torch.Tensor              # as sample(): uint8 (B, H, W, C) / float (B, 2) / int64 (B, T), CPU


def load(path: str | Path, *, ema: bool = False, device: str | torch.device = "cpu",
         notes: list | None = None) -> "Generator":
    """The generator of a wgan checkpoint (generator or train-state; image, toy or text), rebuilt from the
    checkpoint's metadata; weights on `device`. A version-1 checkpoint's note goes to `notes`."""
    path = Path(path)
    try:
        G, meta = checkpoint.load_generator(path, ema=ema, device=device, task=TASKS, command="wgan_cli.load",
                                            notes=notes)
    except CheckpointError as e:
        if e.message.endswith("no EMA generator was kept in this run"):
            raise CheckpointError(e.message, "load with ema=False, or train with an EMA decay") from None
        raise
    model = meta["model"]
    extra = meta.get("extra", {})
    spec = Spec(task=meta["task"], arch=model["arch"], z_dim=int(G.z_dim), n_classes=int(G.n_classes or 0),
                size=model.get("size") if meta["task"] == "image" else None,
                channels=model.get("channels") if meta["task"] == "image" else None,
                pixel_range=getattr(G, "pixel_range", None) if meta["task"] == "image" else None,
                seq_len=model.get("seq_len") if meta["task"] == "text" else None,
                vocab=tuple(extra["vocab"]) if meta["task"] == "text" else None,
                ema=ema, step=meta["step"], digest=meta["digest"], model=model)
    if spec.task == "image" and None in (spec.size, spec.channels):   # a spec that leaves them to the builder
        with torch.no_grad(), models.eval_mode(G):
            probe = G(torch.zeros(1, spec.z_dim, device=_device(G)),
                      torch.zeros(1, dtype=torch.int64, device=_device(G)) if spec.n_classes else None)
        spec = Spec(**{**spec.__dict__, "size": probe.shape[-1], "channels": probe.shape[1]})
    return Generator(G, spec, path)


def _device(module: torch.nn.Module) -> torch.device:
    first = next(itertools.chain(module.parameters(), module.buffers()), None)
    return first.device if first is not None else torch.device("cpu")


def image_seeds(n: int, seed: int = 0) -> list[range]:
    """The seeds of `sample(n, seed=seed)`: (seed + k) mod 2^32 for k < n, as lazy ranges."""
    _check_int("n", n, 1, SEEDS)
    _check_int("seed", seed, 0, 2**63 - 1)
    start = seed % SEEDS
    first = range(start, min(start + n, SEEDS))
    return [first, range(0, n - len(first))] if len(first) < n else [first]


def parse_seeds(text: str) -> list[range]:
    """'0-99,200' -> [range(0, 100), range(200, 201)]: comma-separated seeds and inclusive ranges A-B."""
    ranges = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi) if dash else int(lo)
        except ValueError:
            raise UsageError(f"seeds {text!r}: {part!r} is neither a seed nor a range A-B",
                             "write seeds as 0-99,200") from None
        if not 0 <= a <= b <= MAX_SEED:
            raise UsageError(f"seeds {text!r}: {part!r} must be 0 <= A <= B <= 2^32 - 1 (32-bit seeds)",
                              "write seeds as 0-99,200")
        ranges.append(range(a, b + 1))
    if not ranges:
        raise UsageError(f"seeds {text!r}: no seed given", "write seeds as 0-99,200")
    return ranges


def _check_int(name: str, value, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise UsageError(f"{name} = {value!r}: must be an integer in [{lo}, {hi}]")


def _seed_list(seeds) -> tuple[Iterable[int], int]:
    """(an iterator-able of seeds, how many): a range, a list of ranges (parse_seeds), or any sequence of ints."""
    if isinstance(seeds, str):
        seeds = parse_seeds(seeds)
    if isinstance(seeds, range):
        seeds = [seeds]
    if isinstance(seeds, (list, tuple)) and seeds and all(isinstance(s, range) for s in seeds):
        return itertools.chain.from_iterable(seeds), sum(len(r) for r in seeds)
    seeds = [int(s) for s in seeds] if not isinstance(seeds, (list, tuple)) else list(seeds)
    for s in seeds:
        _check_int("seed", s, 0, MAX_SEED)
    return seeds, len(seeds)


def check_truncation(truncation, prior: str = PRIOR) -> None:
    if truncation is None:
        return
    if prior != PRIOR:
        raise UsageError(f"truncation resamples a normal latent's tails; this generator's prior is {prior}",
                         "sample without truncation")
    if isinstance(truncation, bool) or not isinstance(truncation, (int, float)) or not math.isfinite(truncation) \
            or truncation < TRUNCATION_MIN:
        raise UsageError(f"truncation = {truncation!r}: must be a finite number >= {TRUNCATION_MIN}",
                         "e.g. truncation 1.0 keeps every latent component within [-1, 1]")


def seeded_latent(seed: int, z_dim: int, n_classes: int = 0, truncation: float | None = None
                  ) -> tuple[torch.Tensor, int | None]:
    """One sample's (z (z_dim,), class or None) from torch.Generator().manual_seed(seed): z ~ N(0, I); the class,
    uniform, when n_classes; then with truncation T each component beyond |T| redrawn until within it (in
    rounds of fresh N(0, 1) draws; the first draw inside |T| is kept, per component)."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(z_dim, generator=gen)
    y = int(torch.randint(0, n_classes, (1,), generator=gen)) if n_classes else None
    if truncation is not None:
        bad = z.abs() > truncation
        rounds = max(1, math.ceil(4 / math.erf(truncation / math.sqrt(2))))   # ~4 hits per component per round
        while bool(bad.any()):
            fresh = torch.randn(rounds, z_dim, generator=gen)
            ok = fresh.abs() <= truncation
            first = ok.int().argmax(0)                                           # first accepted draw per column
            found = ok.any(0) & bad
            z[found] = fresh[first[found], torch.nonzero(found).squeeze(1)]
            bad &= ~found
    return z, y


class Generator:
    """A loaded generator: `sample`, `latents`, `generate`, `text`; `spec` says what it is, `module` is the net."""

    def __init__(self, module: torch.nn.Module, spec: Spec, path: Path | None = None):
        self.module, self.spec, self.path = module.eval(), spec, path

    def __repr__(self) -> str:
        what = {"image": f"{self.spec.size}x{self.spec.size}x{self.spec.channels}", "toy": "2-D points",
                "text": f"{self.spec.seq_len} characters"}[self.spec.task]
        cond = f", {self.spec.n_classes} classes" if self.spec.n_classes else ""
        return f"<wgan Generator {self.spec.arch} ({self.spec.task}, {what}{cond}) from {self.path}>"

    @property
    def device(self) -> torch.device:
        return _device(self.module)

    # ---- latents -----------------------------------------------------------------------------------------
    def _classes(self, classes, n: int | None = None) -> torch.Tensor | int | None:
        """None (random classes), one class for all, or one per sample, checked against the model."""
        if classes is None:
            return None
        if not self.spec.n_classes:
            raise UsageError("classes were given, but the model is unconditional", "sample without classes")
        if isinstance(classes, (int, np.integer)) and not isinstance(classes, bool):
            c = torch.tensor([int(classes)])
        else:
            c = torch.as_tensor(np.asarray(classes))
            if c.dtype.is_floating_point or c.dtype == torch.bool or c.ndim != 1:
                raise UsageError(f"classes must be an integer or a 1-D sequence of integers, got {c.dtype} "
                                 f"{tuple(c.shape)}")
            if n is not None and len(c) != n:
                raise UsageError(f"{len(c)} classes for {n} samples", "give one class per sample, or one for all")
        bad = c[(c < 0) | (c >= self.spec.n_classes)]
        if len(bad):
            raise UsageError(f"class {int(bad[0])} is out of range: the model has classes 0..{self.spec.n_classes - 1}",
                             f"pick classes between 0 and {self.spec.n_classes - 1}")
        return int(c[0]) if isinstance(classes, (int, np.integer)) else c.long()

    def latents(self, n: int | None = None, seed: int = 0, *, seeds=None, classes=None,
                truncation: float | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(z (N, z_dim) float32, classes (N,) int64 or None) on the CPU for `n` samples from `seed`, or one per
        seed in `seeds` (a list of ints, a range, or text such as '0-99,200'). `classes`: one for all samples or
        one per sample; random (from each sample's seed) when None."""
        zs, ys = [], []
        for b in self._latent_batches(n, seed, seeds, classes, truncation, BATCH):
            zs.append(b[1])
            ys.append(b[2])
        return torch.cat(zs), (torch.cat(ys) if ys[0] is not None else None)

    def _latent_batches(self, n, seed, seeds, classes, truncation, batch_size):
        """Yield (seeds, z, classes) chunks of at most batch_size rows."""
        check_truncation(truncation, self.spec.prior)
        if seeds is None:
            if n is None:
                raise UsageError("give the number of samples n, or seeds")
            seeds = image_seeds(n, seed)
        elif n is not None:
            raise UsageError("give either n (with seed) or seeds, not both")
        seed_iter, total = _seed_list(seeds)
        if total == 0:
            raise UsageError("no seeds given")
        fixed = self._classes(classes, total)
        it = iter(seed_iter)
        done = 0
        while done < total:
            chunk = list(itertools.islice(it, batch_size))
            drawn = [seeded_latent(s, self.spec.z_dim, self.spec.n_classes if fixed is None else 0, truncation)
                     for s in chunk]
            z = torch.stack([d[0] for d in drawn])
            if not self.spec.n_classes:
                y = None
            elif fixed is None:
                y = torch.tensor([d[1] for d in drawn], dtype=torch.int64)
            elif isinstance(fixed, int):
                y = torch.full((len(chunk),), fixed, dtype=torch.int64)
            else:
                y = fixed[done: done + len(chunk)]
            yield chunk, z, y
            done += len(chunk)

    # ---- samples -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, z: torch.Tensor, classes=None) -> torch.Tensor:
        """The module's raw output for latents z (N, z_dim), on the CPU: images (N, C, H, W) in the model's range
        (spec.pixel_range), points (N, 2), or text (N, T, V) character probabilities.

        Every forward pass has FORWARD rows (the last block padded with zero latents, class 0): convolution
        kernels pick their algorithm by the batch's shape, and two algorithms round differently (~1e-6, enough to
        flip one pixel level in a few thousand). One shape makes a sample's bytes independent of how many are
        drawn with it and of the stream's batch size, on a given device."""
        z = torch.as_tensor(z)
        if z.ndim != 2 or z.shape[1] != self.spec.z_dim or not z.dtype.is_floating_point:
            raise UsageError(f"latents must be float (N, {self.spec.z_dim}), got {z.dtype} {tuple(z.shape)}")
        if not torch.isfinite(z).all():
            raise UsageError("latents hold NaN or infinite values")
        y = self._classes(classes, len(z))
        if self.spec.n_classes and y is None:
            raise UsageError("a conditional model needs classes for given latents",
                             "give one class for all, or one per latent")
        if isinstance(y, int):
            y = torch.full((len(z),), y, dtype=torch.int64)
        n, z = len(z), z.float()
        pad = -n % FORWARD
        if pad:
            z = torch.cat([z, z.new_zeros(pad, z.shape[1])])
            y = None if y is None else torch.cat([y, y.new_zeros(pad)])
        return models.generate(self.module, z, y, chunk=FORWARD, to="cpu")[:n]

    def samples_of(self, z: torch.Tensor, classes=None) -> torch.Tensor:
        """What `sample` returns for latents z, made FORWARD rows at a time, so the float tensor held at once is
        one forward pass's (the same bytes as finish(generate(z)): generate pads every pass to FORWARD rows)."""
        y = self._classes(classes, len(z))
        if isinstance(y, int):
            y = torch.full((len(z),), y, dtype=torch.int64)
        return torch.cat([self.finish(self.generate(z[i: i + FORWARD], None if y is None else y[i: i + FORWARD]))
                          for i in range(0, len(z), FORWARD)])

    def finish(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw output -> what `sample` returns: uint8 (N, H, W, C) images quantised as saved files, float32
        (N, 2) points, or int64 (N, T) character indices (argmax, as the paper decodes)."""
        if self.spec.task == "image":
            return to_uint8(raw, self.spec.pixel_range).permute(0, 2, 3, 1).contiguous()
        if self.spec.task == "text":
            return raw.argmax(-1)
        return raw.float()

    def batches(self, n: int | None = None, seed: int = 0, *, seeds=None, classes=None,
                truncation: float | None = None, z: torch.Tensor | np.ndarray | None = None,
                batch_size: int = BATCH) -> Iterator[Batch]:
        """`sample` as a stream of Batch chunks of at most batch_size rows: bounded memory for any
        number of samples. With `z` (N, z_dim), those latents instead of seeded ones."""
        _check_int("batch_size", batch_size, 1, 2**24)
        if z is not None:
            if n is not None or seeds is not None or truncation is not None:
                raise UsageError("given latents take no n, seeds or truncation")
            y = self._classes(classes, len(z))
            if self.spec.n_classes and y is None:
                raise UsageError("a conditional model needs classes for given latents",
                                 "give one class for all, or one per latent")
            for i in range(0, len(z), batch_size):
                zc = torch.from_numpy(np.array(z[i: i + batch_size], dtype=np.float32))   # a copy: z may be a memory map
                yc = None if y is None else (torch.full((len(zc),), y, dtype=torch.int64) if isinstance(y, int)
                                             else y[i: i + batch_size])
                yield Batch(None, zc, yc, self.samples_of(zc, yc))
            return
        for chunk, zc, yc in self._latent_batches(n, seed, seeds, classes, truncation, batch_size):
            yield Batch(chunk, zc, yc, self.samples_of(zc, yc))

    def sample(self, n: int | None = None, seed: int = 0, *, seeds=None, classes=None,
               truncation: float | None = None) -> torch.Tensor:
        """n samples from `seed` (or one per seed of `seeds`): uint8 (N, H, W, C) images exactly as `wgan sample`
        saves them, float32 (N, 2) toy points, or int64 (N, T) character indices for a text model."""
        return torch.cat([b.samples for b in self.batches(n, seed, seeds=seeds, classes=classes,
                                                            truncation=truncation)])

    def text(self, n: int | None = None, seed: int = 0, *, seeds=None, truncation: float | None = None
             ) -> list[str]:
        """A text model's lines (argmax-decoded, padding stripped)."""
        if self.spec.task != "text":
            raise UsageError(f"text() needs a text model; this one is a {self.spec.task} model",
                             "use sample() for images and points")
        from wgan_cli.data.text import CharMap

        return CharMap.from_json(list(self.spec.vocab)).decode(self.sample(n, seed, seeds=seeds,
                                                                           truncation=truncation))

    def images(self, z, classes=None) -> torch.Tensor:
        """uint8 (N, H, W, C) images of given latents (an image model)."""
        if self.spec.task != "image":
            raise UsageError(f"images() needs an image model; this one is a {self.spec.task} model")
        return self.samples_of(torch.as_tensor(z), classes)
