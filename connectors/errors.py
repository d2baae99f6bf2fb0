"""Errors sorted by what the runner should do with them.

- :class:`FatalError` — stop the run; nothing sensible can follow.
- :class:`RetriableError` — a dead broker, a 5xx, a timeout: try again later, keep the cursor.
- :class:`SkippableError` — one record is bad: quarantine it with the reason, go on.
- :class:`ConfigError` — the integration or spec is wrong: a person must fix it.

A stage failure is wrapped once in :class:`StageError`, which names the stage and the load id.

>>> err = StageError("load", "20261124T081500-abc", RetriableError("database unreachable"))
>>> str(err)
'load failed (load id 20261124T081500-abc): database unreachable'
>>> err.kind
'retriable'
"""

from __future__ import annotations

from connectors.base.reserved import ErrorKind


class WeftlineError(Exception):
    """Base of every error weftline raises on purpose."""

    kind: ErrorKind = "fatal"


class FatalError(WeftlineError):
    kind: ErrorKind = "fatal"


class RetriableError(WeftlineError):
    kind: ErrorKind = "retriable"


class SkippableError(WeftlineError):
    """One record cannot be processed; it goes to quarantine with this reason."""

    kind: ErrorKind = "skippable"


class ConfigError(WeftlineError):
    kind: ErrorKind = "config"


class StageError(WeftlineError):
    """A stage failed; wraps the cause exactly once."""

    def __init__(self, stage: str, load_id: str | None, cause: BaseException):
        self.stage = stage
        self.load_id = load_id
        self.cause = cause
        self.kind = cause.kind if isinstance(cause, WeftlineError) else "fatal"
        super().__init__(f"{stage} failed (load id {load_id}): {cause}")

    @classmethod
    def wrap(cls, stage: str, load_id: str | None, cause: BaseException) -> "StageError":
        """Wrap ``cause`` unless it is already a StageError (wrap once)."""
        return cause if isinstance(cause, StageError) else cls(stage, load_id, cause)
