"""What the engine tells the world. Sinks (Rich progress, plain lines, metrics.jsonl, a test's list) take these."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RunStarted:
    step: int            # generator iterations already done (non-zero on resume)
    total: int
    description: str = ""


@dataclass(frozen=True)
class StepDone:
    step: int
    total: int
    stats: dict = field(default_factory=dict)   # name -> float, averaged since the last StepDone
    it_s: float = 0.0                           # generator iterations per second over the window
    elapsed: float = 0.0


@dataclass(frozen=True)
class Saved:
    step: int
    path: str
    kind: str


@dataclass(frozen=True)
class Evaluated:
    step: int
    metrics: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Artifact:
    """A file written for people to look at: a sample grid, a figure, text samples."""

    step: int
    path: str
    kind: str   # "samples" (PNG grid) | "figure" (PNG) | "text" (UTF-8 lines, one sample per line)


@dataclass(frozen=True)
class Note:
    text: str
    level: str = "info"   # info | warning


@dataclass(frozen=True)
class RunFinished:
    step: int
    elapsed: float
