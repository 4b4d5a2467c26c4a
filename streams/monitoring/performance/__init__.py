"""Model performance on delayed labels: join labels to predictions, then score each model.

Labels arrive late, shuffled, duplicated or never. :class:`LabelJoiner` pairs each label
with its prediction by request id in bounded state (TTL in event or wall time, a maximum
number of entries, first-wins duplicates) and counts what could not be joined.
:class:`PerformanceMonitor` scores the joined requests per model version and role,
window by window, and compares the challenger with the champion on the same requests.

- Joining: :class:`LabelJoiner`, :class:`Joined`, :class:`JoinStats`.
- Monitoring: :class:`PerformanceMonitor`, :class:`Scored`, :class:`PerformanceReport`,
  :class:`RoleMetrics`, :class:`Comparison`.
- Metrics (scikit-learn's definitions): :func:`accuracy`, :func:`confusion`,
  :func:`precision`, :func:`recall`, :func:`f1`, :func:`log_loss`, :func:`roc_auc`,
  :func:`mae`, :func:`rmse`, :func:`r2`.
- Paired significance: :func:`mcnemar` (classification correctness),
  :func:`paired_ttest` (absolute errors).

Examples
--------
>>> from streams.monitoring import performance
>>> from streams.monitoring.windows import WindowSpec
>>> joiner = performance.LabelJoiner(ttl_ms=60_000)
>>> monitor = performance.PerformanceMonitor("regression", window=WindowSpec(events=2))
>>> joiner.add_label("r1", 3.0, ts=5)          # the label comes first: it waits
>>> joiner.add_prediction("r2", {"champion": performance.Scored(7, 4.0)}, ts=6)
>>> joined = [joiner.add_prediction("r1", {"champion": performance.Scored(7, 2.0)}, ts=7),
...           joiner.add_label("r2", 5.0, ts=9)]
>>> reports = [r for j in joined if j for r in monitor.update(j.label, j.prediction, j.label_ts)]
>>> reports[0].roles[0].metrics
{'mae': 1.0, 'rmse': 1.0, 'r2': 0.0}
"""

from streams.monitoring.performance.classification import (
    Confusion,
    accuracy,
    confusion,
    f1,
    log_loss,
    precision,
    recall,
)
from streams.monitoring.performance.joiner import Joined, JoinStats, LabelJoiner
from streams.monitoring.performance.mcnemar import mcnemar, mcnemar_counts
from streams.monitoring.performance.monitor import DEFAULT_WINDOW, PerformanceMonitor, Scored
from streams.monitoring.performance.paired_ttest import paired_ttest
from streams.monitoring.performance.regression import mae, r2, rmse
from streams.monitoring.performance.report import Comparison, PerformanceReport, RoleMetrics
from streams.monitoring.performance.roc_auc import roc_auc

__all__ = [
    "DEFAULT_WINDOW",
    "Comparison",
    "Confusion",
    "JoinStats",
    "Joined",
    "LabelJoiner",
    "PerformanceMonitor",
    "PerformanceReport",
    "RoleMetrics",
    "Scored",
    "accuracy",
    "confusion",
    "f1",
    "log_loss",
    "mae",
    "mcnemar",
    "mcnemar_counts",
    "paired_ttest",
    "precision",
    "r2",
    "recall",
    "rmse",
    "roc_auc",
]
