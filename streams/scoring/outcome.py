"""What one model did with one request: a prediction, or an error, or a skip reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Outcome:
    """One model's answer to one request.

    ``output`` is a class label (str) or a number; ``error`` is ``(code, message)`` when
    the model failed; ``skipped`` says why it did not run (challenger sampled out, busy).
    """

    output: str | float | None = None
    probabilities: dict[str, float] | None = None
    latency_ms: float | None = None
    error: tuple[str, str] | None = None
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.skipped is None

    @classmethod
    def failed(cls, code: str, message: str, latency_ms: float | None = None) -> Outcome:
        return cls(error=(code, message), latency_ms=latency_ms)

    @classmethod
    def skip(cls, reason: str) -> Outcome:
        return cls(skipped=reason)

    def as_log(self, version: int) -> dict[str, Any]:
        """The ``ModelOutcome`` record of the prediction log."""
        error = None
        if self.error is not None:
            error = {"code": self.error[0], "message": self.error[1], "stage": "score"}
        return {
            "version": version,
            "output": self.output,
            "probabilities": self.probabilities,
            "latency_ms": self.latency_ms,
            "error": error,
            "skipped": self.skipped,
        }
