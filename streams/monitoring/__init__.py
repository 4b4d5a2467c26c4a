"""Monitoring: pure estimators over plain data that watch a served model.

The monitor app (Kafka glue, elsewhere) feeds these estimators the prediction log, the
joined labels and the DLQ, and writes what they return to ``<prefix>.metrics`` and
``<prefix>.alerts``. Nothing here knows Kafka or does I/O; every estimator is a plain
class with an ``update`` that returns the results of any window it closed.

Subpackages, one idea each:

- :mod:`~streams.monitoring.drift` -- data drift per feature against the training
  profile: PSI, Kolmogorov-Smirnov, Jensen-Shannon, Wasserstein, chi-square, windowed.
- :mod:`~streams.monitoring.change` -- streaming change detection (ADWIN, Page-Hinkley,
  DDM) on feature values and on the model's error stream (concept drift).
- :mod:`~streams.monitoring.performance` -- delayed-label join and performance per model
  version and role, challenger against champion with a significance test.
- :mod:`~streams.monitoring.fairness` -- per-group rates and Fairlearn's parity gaps for
  the declared sensitive attributes.
- :mod:`~streams.monitoring.anomaly` -- sampled Half-Space Trees anomaly rates.
- :mod:`~streams.monitoring.ops` -- QPS, latency quantiles, error, DLQ and backup rates.

Shared pieces: :class:`MetricPoint` and :class:`Alert` (the ``metric.avsc`` and
``alert.avsc`` records, stamped with model and time by :meth:`MetricPoint.to_record`),
:class:`WindowSpec` / :class:`Window` (tumbling count or event-time windows), and the
errors rooted at :class:`MonitoringError`. The subpackages load on first use: River and
SciPy take seconds to import, and a consumer of the result types needs neither. The
monitor's Kafka loop (:mod:`~streams.monitoring.stream`) keeps each watch's state as
HMAC-signed snapshots (:mod:`~streams.monitoring.snapshots`).

Examples
--------
>>> from streams.monitoring import MetricPoint, WindowSpec, drift
>>> WindowSpec(events=500)
WindowSpec(events=500, millis=None)
>>> drift.psi([50, 50], [50, 50])
0.0
"""

import importlib
from types import ModuleType
from typing import Final

from streams.monitoring.errors import (
    EmptySampleError,
    MonitorConfigError,
    MonitoringError,
    ReferenceProfileError,
    SnapshotRefused,
)
from streams.monitoring.labels import label_key
from streams.monitoring.results import KINDS, Alert, MetricPoint, Severity, Significance
from streams.monitoring.windows import Window, WindowClock, WindowSpec

__all__ = [
    "KINDS",
    "Alert",
    "EmptySampleError",
    "MetricPoint",
    "MonitorConfigError",
    "MonitoringError",
    "ReferenceProfileError",
    "Severity",
    "Significance",
    "SnapshotRefused",
    "Window",
    "WindowClock",
    "WindowSpec",
    "anomaly",
    "change",
    "drift",
    "fairness",
    "label_key",
    "ops",
    "performance",
]

_SUBPACKAGES: Final = frozenset({"anomaly", "change", "drift", "fairness", "ops", "performance"})


def __getattr__(name: str) -> ModuleType:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
