"""Operations: is the model serving fast enough, and is it answering at all?

:class:`OpsMonitor` turns the prediction log and the DLQ into per-window throughput (QPS),
latency quantiles (p50, p95, p99; end to end and per model role), the error rate, the
DLQ rate and the rate of requests served by the backup model, as an :class:`OpsReport`.
Latency quantiles come from :class:`LatencySketch`, fixed log-spaced buckets with a
relative error of at most 1 % (configurable), one logarithm per value.

Examples
--------
>>> from streams.monitoring import ops
>>> sketch = ops.LatencySketch(relative_accuracy=0.02)
>>> for ms in (1.0, 2.0, 3.0, 400.0):
...     sketch.add(ms)
>>> sketch.quantile(0.0), sketch.quantile(1.0)
(1.0, 400.0)
"""

from streams.monitoring.ops.latency import LatencySketch
from streams.monitoring.ops.monitor import (
    DEFAULT_WINDOW,
    REQUEST,
    LatencySummary,
    OpsMonitor,
    OpsReport,
)

__all__ = [
    "DEFAULT_WINDOW",
    "REQUEST",
    "LatencySketch",
    "LatencySummary",
    "OpsMonitor",
    "OpsReport",
]
