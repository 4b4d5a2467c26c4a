"""The scorer: Kafka requests in, exactly-once replies out.

Each request is validated at the door against the champion's input contract, answered by
the champion (or by the backup when the champion fails or misses its deadline), scored in
the shadow by the challenger (never delaying or changing the reply), and logged with
everything needed to trace it. Bad input goes to the model's DLQ with its original bytes.

- :class:`Scorer`, :class:`ScorerConfig`: the transactional consume-score-produce loop.
- :class:`Deployment`, :class:`DeploymentTable`, :class:`ServedModel`: what is served
  now; swapped whole, picked up at the next micro-batch.
- :func:`score`, :class:`ServingPolicy`: the champion / backup / challenger policy, pure.
- :func:`adapt`: one batch interface over River and scikit-learn models.
"""

from streams.scoring.adapters import Predictor, UnsupportedModelError, adapt
from streams.scoring.deployment import Deployment, DeploymentTable, ServedModel
from streams.scoring.guard import Guard
from streams.scoring.outcome import Outcome
from streams.scoring.policy import Scored, ServingPolicy, score
from streams.scoring.scorer import Scorer, ScorerConfig, ScorerError, ScorerFencedError

__all__ = [
    "Deployment",
    "DeploymentTable",
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
    "UnsupportedModelError",
    "adapt",
    "score",
]
