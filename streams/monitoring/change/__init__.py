"""Streaming change detection: has the mean of a stream shifted, and since when?

Where :mod:`streams.monitoring.drift` compares whole distributions window by window,
these detectors watch one number per event and fire as soon as its mean moves, with the
event count at which they fired. They are cheap enough to run on every event (ADWIN
~0.2 us, Page-Hinkley ~0.7 us; River's KSWIN, ~270 us, is not offered).

- :class:`ConceptDriftMonitor` -- concept drift: detectors on a model version's error
  stream (0/1 errors or absolute errors), ADWIN by default.
- :class:`FeatureChangeMonitor` -- one detector per numeric feature, on values
  standardised with the reference profile's mean and standard deviation.
- Detectors: :class:`ADWINDetector`, :class:`PageHinkleyDetector` (wrapping River) and
  :class:`DDMDetector` (Gama et al. 2004 on 0/1 errors, with warning and drift levels).
- :class:`Detection` is what they report; :meth:`Detection.to_alert` makes the alert.

Examples
--------
>>> from streams.monitoring import change
>>> detector = change.ADWINDetector()
>>> found = [detector.update(float(i >= 1000)) for i in range(1200)]
>>> first = next(d for d in found if d is not None)
>>> first.level, 1000 < first.at_event < 1100
('drift', True)
"""

from streams.monitoring.change.adwin import ADWINDetector
from streams.monitoring.change.concept import ConceptDriftMonitor
from streams.monitoring.change.ddm import DDMDetector
from streams.monitoring.change.detection import ChangeDetector, Detection, Level
from streams.monitoring.change.features import FEATURE_DELTA, FeatureChangeMonitor
from streams.monitoring.change.page_hinkley import Z_THRESHOLD, PageHinkleyDetector

__all__ = [
    "FEATURE_DELTA",
    "Z_THRESHOLD",
    "ADWINDetector",
    "ChangeDetector",
    "ConceptDriftMonitor",
    "DDMDetector",
    "Detection",
    "FeatureChangeMonitor",
    "Level",
    "PageHinkleyDetector",
]
