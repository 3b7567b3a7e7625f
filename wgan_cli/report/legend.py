"""Legend labels that say what differs between runs (e.g. "penalty=clip" or "objective=gan, arch_seed=3")."""

from __future__ import annotations

import json
from collections import Counter

from wgan_cli.report.runs import Run, canon

# Options that never change what a run learns or how it compares: where it writes, how often it logs.
IGNORED_KEYS = {"out", "resume", "device", "log_every", "save_every", "sample_every", "eval_every", "plot_every",
                "workers", "data_dir", "download", "strict", "output", "where"}
# Keys shown first when several differ (the method, then the architecture, the data, the hyperparameters).
PRIORITY = ["command", "train.objective", "train.penalty", "image.arch", "model.arch", "image.arch_seed",
            "model.arch_seed", "image.dataset", "toy.dataset", "textgen.corpus", "image.variant",
            "image.critic_norm", "model.critic_norm", "image.dim", "model.dim", "toy.dim", "textgen.dim",
            "toy.depth", "image.size", "image.train_images", "image.augment", "image.augment_p", "image.ada_target",
            "image.mirror", "train.optimizer", "train.lr", "train.gp_weight", "train.n_critic", "train.batch_size",
            "train.betas", "train.seed", "train.iters"]


def flatten(options: dict, prefix: str = "") -> dict:
    """{"train": {"lr": 1e-4}} -> {"train.lr": 1e-4}; lists stay values."""
    out = {}
    for k, v in options.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def differing_keys(runs: list[Run]) -> list[str]:
    """Dotted option keys whose values differ between the runs (ignored keys left out), most telling first."""
    flat = [flatten(r.options) for r in runs]
    keys = {k for f in flat for k in f if k.rsplit(".", 1)[-1] not in IGNORED_KEYS}
    differ = [k for k in keys if len({canon(f.get(k, "<absent>")) for f in flat}) > 1]
    rank = {k: i for i, k in enumerate(PRIORITY)}
    return sorted(differ, key=lambda k: (rank.get(k, len(rank)), k))


def labels(runs: list[Run], all_keys: bool = False) -> list[str]:
    """One legend label per run, naming the options that tell the runs apart, e.g. "penalty=clip, lr=5e-05".

    The options are flattened to dotted keys; keys that never matter for a comparison (out, resume, device,
    the log/save/sample cadences, data paths) are dropped; of the keys whose values differ, most telling first
    (method, architecture, data, hyperparameters), a key is kept when it separates runs the kept keys do not.
    So options that follow from another (clipping brings RMSProp and lr 5e-05 with it) do not crowd the label,
    and a grid of penalty x lr shows both. `all_keys=True` keeps every differing key. A key is shown by its
    last part unless two kept keys share it. With one run or nothing differing the label is the folder name
    (with its parent's name when two folders share a name); runs whose labels still coincide (same options)
    get their folder name added, and are numbered as a last resort."""
    names = [r.name for r in runs]
    keys = differing_keys(runs)
    if len(runs) < 2 or not keys:
        return _unique(names, runs)
    flat = [flatten(r.options) for r in runs]
    kept: list[str] = []
    groups = 1
    for key in keys:
        n = len({tuple(canon(f.get(k)) for k in [*kept, key]) for f in flat})
        if all_keys or n > groups:
            kept.append(key)
            groups = n
    last = [k.rsplit(".", 1)[-1] for k in kept]
    shown = [short if last.count(short) == 1 else k for k, short in zip(kept, last)]
    out = [", ".join(f"{s}={_fmt_value(f.get(k))}" for k, s in zip(kept, shown) if k in f) or n
           for f, n in zip(flat, names)]
    return _unique(out, runs)


def _unique(labels_: list[str], runs: list[Run]) -> list[str]:
    names = [r.name for r in runs]
    out = [f"{lab} ({n})" if labels_.count(lab) > 1 and lab != n else lab for lab, n in zip(labels_, names)]
    counts = Counter(out)
    out = [f"{r.path.resolve().parent.name}/{r.name}" if counts[lab] > 1 and lab == r.name else lab
           for lab, r in zip(out, runs)]   # one folder name in two places: say which parent
    counts, seen = Counter(out), Counter()
    for i, lab in enumerate(out):   # still the same: number them
        if counts[lab] > 1:
            seen[lab] += 1
            out[i] = f"{lab} #{seen[lab]}"
    return out



def _fmt_value(v) -> str:
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return ",".join(_fmt_value(x) for x in v)
    if v == "":   # an empty list option (--augment, --eval-metrics): none
        return "none"
    return str(v)
