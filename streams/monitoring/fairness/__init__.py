"""Group fairness: does the model treat the groups of a sensitive attribute alike?

For every sensitive attribute a model declares (sex, age band, region...), the monitor
measures per group the selection rate (positive prediction rate) and, with labels, the
true and false positive rates, and the gaps between groups, with Fairlearn's definitions:

- :func:`demographic_parity_difference` (max - min selection rate) and
  :func:`demographic_parity_ratio` (min / max);
- :func:`equal_opportunity_difference` (max - min TPR);
- :func:`equalized_odds_difference` (the larger of the TPR and FPR differences).

Rates a window cannot define (a group with no labelled positive has no TPR) are left out
rather than counted as 0. :class:`FairnessMonitor` does it over count-based windows and
returns a :class:`FairnessReport` per attribute; :meth:`FairnessReport.alerts` flags gaps
past :data:`DEFAULT_LIMITS` (differences above 0.1, the parity ratio below 0.8).

Examples
--------
>>> from streams.monitoring import fairness
>>> rates = {"a": 0.2, "b": 0.5}
>>> fairness.demographic_parity_difference(rates), fairness.demographic_parity_ratio(rates)
(0.3, 0.4)
"""

from streams.monitoring.fairness.demographic_parity import (
    demographic_parity_difference,
    demographic_parity_ratio,
)
from streams.monitoring.fairness.equal_opportunity import equal_opportunity_difference
from streams.monitoring.fairness.equalized_odds import equalized_odds_difference
from streams.monitoring.fairness.groups import GroupCounts, GroupRates
from streams.monitoring.fairness.monitor import DEFAULT_WINDOW, MISSING, FairnessMonitor
from streams.monitoring.fairness.report import DEFAULT_LIMITS, FairnessReport

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_WINDOW",
    "MISSING",
    "FairnessMonitor",
    "FairnessReport",
    "GroupCounts",
    "GroupRates",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
    "equalized_odds_difference",
]
