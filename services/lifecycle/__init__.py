"""The model lifecycle: retraining with provenance, a gated promotion, the closed loop.

- :func:`retrain` reads a model's labelled requests from ClickHouse, calls the user's
  trainer (``package.module:function``: a DataFrame and params in, a fitted model out),
  evaluates it on a time-ordered holdout against the champion, and registers it (signed)
  as the challenger with its lineage: the data's window, rows, fingerprint and SQL, the
  trainer and its code version, the parent version, what triggered it.
- :class:`PromotionPolicy` (stored per model in the registry, ``models policy``) says
  when a challenger is good enough; :func:`gather` reads the evidence from ClickHouse
  (paired labelled requests, fairness gaps, latency, open alerts) and :func:`decide`
  turns both into promote, retire or wait.
- :class:`Lifecycle` (``modelstream run lifecycle``) applies them every tick, and with
  the loop on retrains a champion a drift alert fires on; every step is a model event.
"""

from __future__ import annotations

from services.lifecycle._errors import RetrainError, TooFewRowsError, TrainerError
from services.lifecycle._evidence import Evidence, gather
from services.lifecycle._gate import Verdict, decide
from services.lifecycle._policy import (
    DEFAULT,
    PolicyError,
    PromotionPolicy,
    format_duration,
    loop_switched,
    parse_duration,
)
from services.lifecycle._process import DriftAlert, Lifecycle, Step, policy_of
from services.lifecycle._retrain import retrain
from services.lifecycle.policy_cli import describe_policy

__all__ = [
    "DEFAULT",
    "DriftAlert",
    "Evidence",
    "Lifecycle",
    "PolicyError",
    "PromotionPolicy",
    "RetrainError",
    "Step",
    "TooFewRowsError",
    "TrainerError",
    "Verdict",
    "decide",
    "describe_policy",
    "format_duration",
    "gather",
    "loop_switched",
    "parse_duration",
    "policy_of",
    "retrain",
]
