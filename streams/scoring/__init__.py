"""The scorer: Kafka requests in, replies out, exactly once (or at least once, faster).

Each request is validated at the door against the champion's input contract, answered by
the champion (or by the backup when the champion fails or misses its deadline), scored in
the shadow by the challenger on its own worker (never delaying or changing the reply), and
logged with every role's outcome once the challenger has answered. Bad input goes to the
model's DLQ with its original bytes.

Pure parts, free of Kafka (a gateway can serve with them too): decode a batch into a
:class:`Frame` → :func:`score` (champion, backup) and :func:`shadow` (challenger) →
:mod:`~streams.scoring.records` (reply, log record).

- :class:`Scorer`, :class:`ScorerConfig`: the consume-score-produce loop.
- :class:`Deployment`, :class:`DeploymentTable`, :class:`ServedModel`: what is served
  now; swapped whole, picked up at the next micro-batch.
- :func:`score`, :func:`shadow`, :class:`ServingPolicy`: the serving policy.
- :func:`adapt`: one batch interface over scikit-learn models, compiled River linear
  pipelines (:mod:`~streams.scoring.linear`) and any other River model.

The loop rides through broker trouble (:mod:`~streams.scoring.retry`) and keeps outputs
that can never be produced out of its transactions: sizes against each topic's limit
(:mod:`~streams.scoring.limits`), ``reply-to`` restricted to this deployment's reply
topics (:mod:`~streams.scoring.reply_to`), and the request behind repeated aborts
isolated to the DLQ (:mod:`~streams.scoring.isolate`).
"""

from streams.scoring.adapters import Predictor, UnsupportedModelError, adapt
from streams.scoring.deployment import Deployment, DeploymentTable, ServedModel
from streams.scoring.frame import Frame
from streams.scoring.guard import Guard
from streams.scoring.outcome import Outcome
from streams.scoring.policy import (
    Scored,
    ServingPolicy,
    Shadowed,
    challenger_outcomes,
    score,
    shadow,
)
from streams.scoring.scorer import (
    AT_LEAST_ONCE,
    EXACTLY_ONCE,
    Scorer,
    ScorerConfig,
    ScorerError,
    ScorerFencedError,
)
from streams.scoring.shadow import Shadow, Ticket

__all__ = [
    "AT_LEAST_ONCE",
    "EXACTLY_ONCE",
    "Deployment",
    "DeploymentTable",
    "Frame",
    "Guard",
    "Outcome",
    "Predictor",
    "Scored",
    "Scorer",
    "ScorerConfig",
    "ScorerError",
    "ScorerFencedError",
    "ServedModel",
    "ServingPolicy",
    "Shadow",
    "Shadowed",
    "Ticket",
    "UnsupportedModelError",
    "adapt",
    "challenger_outcomes",
    "score",
    "shadow",
]
