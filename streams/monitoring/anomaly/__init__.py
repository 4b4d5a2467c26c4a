"""Input anomalies: how many of a model's requests look unlike the recent ones?

Drift statistics compare distributions per feature; an anomaly detector scores whole
input vectors, so it also sees combinations of values that are each normal alone.
:class:`HalfSpaceTreesMonitor` runs River's Half-Space Trees (as NumPy arrays) on every
``sample_every``-th event (one score + learn: ~20 us alone, ~4 us in a batch), with
inputs scaled to [0, 1] by the reference profile's min and max (:class:`ProfileScaler`)
or by the range seen so far (:class:`RunningScaler`), and reports per window the rate of
scores above a threshold (self-calibrated by default) in an :class:`AnomalyReport`.

Examples
--------
>>> from streams.monitoring import anomaly
>>> scaler = anomaly.ProfileScaler.from_profile(
...     {"numeric": {"age": {"min": 18.0, "max": 90.0}}})
>>> scaler.scale({"age": 54.0})
{'age': 0.5}
"""

from streams.monitoring.anomaly.half_space_trees import (
    DEFAULT_WINDOW,
    AnomalyReport,
    HalfSpaceTreesMonitor,
    Scaler,
)
from streams.monitoring.anomaly.scaling import ProfileScaler, RunningScaler

__all__ = [
    "DEFAULT_WINDOW",
    "AnomalyReport",
    "HalfSpaceTreesMonitor",
    "ProfileScaler",
    "RunningScaler",
    "Scaler",
]
