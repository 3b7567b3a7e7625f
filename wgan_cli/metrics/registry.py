"""Every metric `wgan score` and the in-training evaluation compute, by name, and the one path from features to
numbers (`compute`).

A metric is one function `(gen: Features, ref: RefStats | None, opts: MetricOptions) -> dict` in its own module
(scores.py: IS, FID, KID; manifold.py: precision/recall, density/coverage) and one entry in METRICS; the metric
modules import only inputs.py, never this registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from wgan_cli.errors import DataError, UsageError
from wgan_cli.metrics import manifold, scores
from wgan_cli.metrics.inputs import Features, MetricOptions, RefStats


@dataclass(frozen=True)
class Metric:
    fn: Callable[[Features, RefStats | None, MetricOptions], dict]
    needs_ref: bool
    needs_logits: bool
    needs_features: bool = False   # the reference's pool3 features themselves, not only mu and sigma
    default: bool = True           # computed when --metrics is not given (as the weights and the reference allow)


# pr and dc are computed only when named: each costs k-NN distance passes over N x N pairs (three for pr, two for dc)
METRICS = {
    "is": Metric(scores.metric_is, needs_ref=False, needs_logits=True),
    "fid": Metric(scores.metric_fid, needs_ref=True, needs_logits=False),
    "kid": Metric(scores.metric_kid, needs_ref=True, needs_logits=False, needs_features=True),
    "pr": Metric(manifold.metric_pr, needs_ref=True, needs_logits=False, needs_features=True, default=False),
    "dc": Metric(manifold.metric_dc, needs_ref=True, needs_logits=False, needs_features=True, default=False),
}


def parse_metrics(text: str | None) -> list[str] | None:
    """'fid,is' -> ["fid", "is"]; None (or "all") means the default metrics (is, fid, kid) that the weights and the
    reference allow."""
    if text is None or text.strip() in ("", "all"):
        return None
    names = [m.strip().lower() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise UsageError(f"unknown metric {unknown[0]!r}", f"choose from: {', '.join(METRICS)}")
    return list(dict.fromkeys(names))


def choose_metrics(requested: list[str] | None, has_ref: bool, has_logits: bool,
                   logits_hint: str = "") -> tuple[list[str], dict]:
    """The metrics to compute, and {name: why} for those the weights cannot give (IS needs the logits layer)."""
    wanted = requested if requested is not None else [m for m, spec in METRICS.items()
                                                      if spec.default and (has_ref or not spec.needs_ref)]
    unavailable = {m: "unavailable: the Inception weights found have no logits layer (pool3 only)" + logits_hint
                   for m in wanted if METRICS[m].needs_logits and not has_logits}
    return [m for m in wanted if m not in unavailable], unavailable


def compute(names: list[str], gen: Features, ref: RefStats | None, opts: MetricOptions,
            ref_name: str | None = None) -> dict:
    """Features -> numbers: the values of the named metrics in one dict (`wgan score` and the in-training
    evaluation both take this path). Reference statistics of features of another size (another network's) are
    refused, named `ref_name` (default: where they came from)."""
    if ref is not None and ref.mu.shape[0] != gen.pool3.shape[1]:
        raise DataError(f"{ref_name or ref.source}: statistics of {ref.mu.shape[0]}-D features, the network gives "
                        f"{gen.pool3.shape[1]}-D", "recompute the reference with this network")
    values: dict = {}
    for name in names:
        values.update(METRICS[name].fn(gen, ref, opts))
    return values
