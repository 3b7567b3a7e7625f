"""One error family. cli.py catches WganError once and prints `error: <message>` and `hint: <hint>`.

Exit codes (documented in the README):
  2  usage / bad option value          (UsageError)
  3  data missing or unreadable        (DataError)
  4  checkpoint refused                (CheckpointError)
  5  weights missing or refused        (WeightsError)
  6  training diverged (non-finite)    (DivergedError)
  7  output cannot be written          (OutputError)
  8  run directory in use by another run (LockedError)
  9  ranks of a torchrun job disagree  (DistributedError: devices, options, data, replicas, process group)
  130 / 143 interrupted (SIGINT / SIGTERM) after saving
"""

from __future__ import annotations


class WganError(Exception):
    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(WganError):
    exit_code = 2


class DataError(WganError):
    exit_code = 3


class CheckpointError(WganError):
    exit_code = 4


class WeightsError(WganError):
    exit_code = 5


class DivergedError(WganError):
    exit_code = 6


class OutputError(WganError):
    exit_code = 7


class LockedError(WganError):
    exit_code = 8

class DistributedError(WganError):
    """Ranks of a torchrun job disagree or cannot meet. `exit_code` set: another rank's error stopped this one."""

    exit_code = 9

    def __init__(self, message: str, hint: str | None = None, exit_code: int | None = None):
        super().__init__(message, hint)
        if exit_code is not None:
            self.exit_code = exit_code


class Interrupted(WganError):
    """Raised after a clean save when SIGINT/SIGTERM arrived."""

    def __init__(self, signum: int, message: str, hint: str | None = None):
        super().__init__(message, hint)
        self.exit_code = 128 + signum
