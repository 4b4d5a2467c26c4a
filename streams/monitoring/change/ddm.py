"""DDM, the drift detection method of Gama et al. (2004), on a stream of 0/1 errors.

Wraps :class:`river.drift.binary.DDM`: with ``p`` the error rate so far and
``s = sqrt(p (1 - p) / n)``, it remembers the point where ``p + s`` was lowest
(``p_min``, ``s_min``) and signals a **warning** when ``p + s > p_min + 2 s_min`` and
**drift** when ``p + s > p_min + 3 s_min`` (after ``warm_start`` values); after a drift it
starts afresh. A warning is reported when the stream enters the warning zone, and again
only after it stayed out of it for ``rearm`` values (the zone's edge flickers).

DDM compares against everything since the last reset, so the longer a stable stream
runs, the later it reacts, and with few values ``p_min`` is noisy: on a stable 10 % error
stream River's ``warm_start`` of 30 gave 0.78 false drifts per 5,000 values (200 seeds),
300 gave 0.15, so 300 is the default here. ADWIN had none and reacted faster (see
:mod:`.concept`). Cost ~1 us per value.

Examples
--------
>>> import random
>>> rng = random.Random(5)
>>> detector = DDMDetector()
>>> stream = [rng.random() < 0.1 for _ in range(2000)] + [rng.random() < 0.4 for _ in range(500)]
>>> found = [d for x in stream if (d := detector.update(x))]
>>> [(d.level, d.at_event) for d in found if d.level == "drift"]
[('drift', 2154)]
"""

from __future__ import annotations

from river.drift.binary import DDM

from streams.monitoring.change.detection import ChangeDetector, Detection

__all__ = ["DDMDetector"]


class DDMDetector(ChangeDetector):
    """DDM on 0/1 errors (1 = the model was wrong)."""

    name = "ddm"

    def __init__(
        self,
        *,
        warm_start: int = 300,
        warning_threshold: float = 2.0,
        drift_threshold: float = 3.0,
        rearm: int = 100,
    ) -> None:
        super().__init__()
        self._ddm = DDM(
            warm_start=warm_start,
            warning_threshold=warning_threshold,
            drift_threshold=drift_threshold,
        )
        self._rearm = rearm
        self._calm = rearm

    @property
    def estimate(self) -> float:
        """Error rate since the last drift."""
        return float(self._ddm._p.get())

    def update(self, x: float) -> Detection | None:
        self.seen += 1
        ddm = self._ddm
        ddm.update(bool(x))  # type: ignore[no-untyped-call]  # River is untyped
        if ddm.drift_detected:
            self._calm = self._rearm
            return self._found("drift", ddm._p.get())
        if not ddm.warning_detected:
            self._calm += 1
            return None
        armed, self._calm = self._calm >= self._rearm, 0
        return self._found("warning", ddm._p.get()) if armed else None
