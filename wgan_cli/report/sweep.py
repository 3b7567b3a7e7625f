"""Table 2 of the paper (Section 5.1) and the Appendix C count, from a sweep of runs over random architectures.

For each threshold: in how many architectures only the standard GAN succeeded, only WGAN-GP, both, or neither,
where a run succeeds when its final metric lies beyond the threshold (above it for IS, below it for FID). And for
Appendix C: of the architectures also trained with the one-sided penalty (WGAN-LP), in how many the two-sided
penalty ended better.
"""

from __future__ import annotations

import math

from wgan_cli.errors import UsageError
from wgan_cli.report.runs import (HIGHER_IS_BETTER, Run, architecture, architecture_name, canon, dataset,
                                  final_value, metric_names, stat_names)
from wgan_cli.report.tables import md_row, md_text


def table2_method(run: Run) -> str | None:
    """"gan" (objective gan), "wgan-gp" or "wgan-lp" (objective wgan with that penalty); None for the rest."""
    train = run.options.get("train", {})
    if train.get("objective") == "gan":
        return "gan"
    if train.get("objective") == "wgan" and train.get("penalty") in ("gp", "lp"):
        return f"wgan-{train['penalty']}"
    return None


def architecture_identity(run: Run) -> str:
    """What makes two runs 'the same architecture' for Table 2: the dataset and the sampled architecture's
    seed (image.arch_seed) where there is one, else the model spec without the critic's normalisation (which
    the method chooses: BatchNorm for GAN, LayerNorm under a penalty)."""
    spec = architecture(run)
    if spec.get("arch_seed") is not None:
        key = {"arch_seed": spec["arch_seed"]}
    else:
        key = {k: v for k, v in spec.items() if k not in ("critic_norm", "critic_norm_kind")}
    return canon({"dataset": dataset(run), **key})


def table2(runs: list[Run], metric: str, thresholds, higher_is_better: bool | None = None) -> dict:
    """Table 2 and the Appendix C count (see the module docstring). `higher_is_better` defaults to the metric's
    own direction (IS higher, FID and KID lower). Runs are paired by `architecture_identity`; a method run twice
    on one architecture counts once (the run with more iterations; `duplicates` names the other). A run that
    logged no finite value of `metric` (it diverged, or is still running) counts as a failure and is named in
    `missing`; runs of other methods (clipping, LSGAN) are named in `ignored`."""
    thresholds = [float(t) for t in thresholds]
    if not thresholds:
        raise UsageError("Table 2 needs at least one threshold", "e.g. --thresholds 1 3 5 7 9")
    if higher_is_better is None:
        higher_is_better = metric in HIGHER_IS_BETTER

    def better(a, b) -> bool:   # None (no value) is worse than any value
        if a is None or b is None:
            return a is not None
        return a > b if higher_is_better else a < b

    groups: dict[str, dict[str, tuple[Run, float | None]]] = {}
    ignored, missing, duplicates = [], [], []
    for run in runs:
        m = table2_method(run)
        if m is None:
            ignored.append(run.name)
            continue
        value = final_value(run, metric)
        if value is None or not math.isfinite(value):
            missing.append(run.name)
            value = None
        slot = groups.setdefault(architecture_identity(run), {})
        if m in slot:
            keep, drop = sorted([slot[m], (run, value)], key=lambda rv: rv[0].iterations, reverse=True)
            slot[m] = keep
            duplicates.append(drop[0].name)
        else:
            slot[m] = (run, value)
    if not any(v is not None for g in groups.values() for _, v in g.values()):
        logged = metric_names(runs) or stat_names(runs)
        raise UsageError(f"no GAN or WGAN-GP/LP run logged {metric!r}",
                         f"choose one of the logged metrics: {', '.join(logged) or 'none yet'}")
    paired = [g for g in groups.values() if "gan" in g and "wgan-gp" in g]
    rows = []
    for t in thresholds:
        counts = {"threshold": t, "only_gan": 0, "only_wgan_gp": 0, "both": 0, "neither": 0}
        for g in paired:
            gan_ok, gp_ok = better(g["gan"][1], t), better(g["wgan-gp"][1], t)
            key = "both" if gan_ok and gp_ok else "only_gan" if gan_ok else "only_wgan_gp" if gp_ok else "neither"
            counts[key] += 1
        rows.append(counts)
    both_penalties = [g for g in groups.values() if "wgan-gp" in g and "wgan-lp" in g]
    gp_better = sum(better(g["wgan-gp"][1], g["wgan-lp"][1]) for g in both_penalties)
    lp_better = sum(better(g["wgan-lp"][1], g["wgan-gp"][1]) for g in both_penalties)
    arches = []
    for ident, g in groups.items():
        any_run = next(iter(g.values()))[0]
        arches.append({"architecture": architecture_name(any_run), "dataset": dataset(any_run), "identity": ident,
                       **{m: {"run": r.name, "value": v} for m, (r, v) in sorted(g.items())}})
    return {"metric": metric, "higher_is_better": higher_is_better, "thresholds": thresholds,
            "architectures": len(paired), "rows": rows,
            "appendix_c": {"architectures": len(both_penalties), "gp_better": gp_better, "lp_better": lp_better,
                           "ties": len(both_penalties) - gp_better - lp_better},
            "by_architecture": arches, "ignored": ignored, "missing": missing, "duplicates": duplicates}


def table2_markdown(t2: dict) -> str:
    word = "above" if t2["higher_is_better"] else "below"
    lines = [f"Table 2: success = final {md_text(t2['metric'])} {word} the threshold; {t2['architectures']} "
             "architectures trained with both GAN and WGAN-GP.", "",
             md_row(["threshold", "only GAN", "only WGAN-GP", "both", "neither"]), md_row(["---"] * 5)]
    for r in t2["rows"]:
        lines.append(md_row([f"{r['threshold']:g}", r["only_gan"], r["only_wgan_gp"], r["both"], r["neither"]]))
    c = t2["appendix_c"]
    if c["architectures"]:
        lines += ["", f"Appendix C: the two-sided penalty (gp) ended better than the one-sided one (lp) on "
                      f"{c['gp_better']} of {c['architectures']} architectures (lp better on {c['lp_better']}, "
                      f"ties {c['ties']})."]
    metric = md_text(t2["metric"])
    notes = {"missing": f"Counted as failures (no finite final {metric}: diverged, or still running)",
             "ignored": "Ignored (neither GAN nor WGAN-GP/LP)", "duplicates": "Repeated runs left out"}
    named = [f"{text}: {md_text(', '.join(t2[what]))}." for what, text in notes.items() if t2[what]]
    if named:
        lines += ["", *named]
    return "\n".join(lines) + "\n"
