"""The scikit-learn model of the bench: the one every system of ``modelstream bench
--gateway`` serves, and the main run's second model (``scorer_sklearn_eps``).

A scikit-learn ``LogisticRegression`` fitted on the bench's synthetic rows (the ten
numeric features ``x0..x9`` in schema order; no ``group``), serialised once with
joblib. The very same bytes are registered as the champion of :data:`MODEL` in the
modelstream registry (``fmt="joblib"``, input schema ``x0..x9`` doubles) and written as
MLServer's ``model.joblib``: both systems load the same estimator. The main run adds a
challenger, a more strongly regularised ``LogisticRegression`` (``C`` =
:data:`CHALLENGER_C`), scored in the shadow as the River challenger is.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from services.bench._errors import BenchError
from services.bench._stack import SCHEMA
from services.registry import Registry, Signer
from services.synthetic import labelled_rows, rows
from streams.kafka import KafkaConfig, Topics, TopicSpec, ensure_topics, make_admin

__all__ = ["CHALLENGER_C", "FEATURES", "MODEL", "SklearnModel", "feature_rows", "sklearn_model"]

MODEL = "bench-sklearn"
CHALLENGER_C = 0.05  # the champion has scikit-learn's default, C = 1
FEATURES = tuple(field["name"] for field in SCHEMA["fields"])


@dataclass(frozen=True)
class SklearnModel:
    """The fitted model as artifact bytes, and where it is served from."""

    name: str
    artifact: bytes  # joblib
    topics: Topics

    @property
    def requests(self) -> str:
        return self.topics.requests(self.name)

    @property
    def replies(self) -> str:
        return self.topics.replies(self.name)

    def mlserver_topics(self) -> tuple[str, str]:
        """MLServer's Kafka input and output topics."""
        return (self.topics.model_topic(self.name, "mlserver-in"),
                self.topics.model_topic(self.name, "mlserver-out"))  # fmt: skip

    def specs(self, partitions: int, *, mlserver: bool = True) -> list[TopicSpec]:
        own = [TopicSpec(t, partitions, replication=self.topics.replication)
               for t in self.mlserver_topics()] if mlserver else []  # fmt: skip
        return [*self.topics.model_specs(self.name, partitions), *own]


def feature_rows(count: int, *, seed: int = 17) -> list[list[float]]:
    """``count`` synthetic rows as feature vectors in schema order.

    >>> rows_ = feature_rows(2)
    >>> len(rows_), len(rows_[0]), FEATURES[:3]
    (2, 10, ('x0', 'x1', 'x2'))
    """
    return [[row[f] for f in FEATURES] for row in rows(count, seed=seed, sensitive=False)]


def fit_artifact(train_rows: int = 2_000, *, c: float = 1.0) -> bytes:
    """A LogisticRegression (inverse regularisation ``c``) on ``train_rows`` labelled
    rows, as joblib bytes."""
    try:
        import joblib
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise BenchError(f"the bench's scikit-learn model needs scikit-learn and joblib "
                         f"here ({exc}): pip install scikit-learn") from exc  # fmt: skip
    train = labelled_rows(train_rows, sensitive=False)
    x = [[row[f] for f in FEATURES] for row, _ in train]
    model = LogisticRegression(C=c).fit(x, [label for _, label in train])
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


@contextlib.contextmanager
def sklearn_model(
    kafka: KafkaConfig, topics: Topics, *, partitions: int, delete_topics: bool,
    challenger: bool = False, signer: Signer | None = None,
) -> Iterator[SklearnModel]:  # fmt: skip
    """Fit, create the model's topics, register the champion (and with ``challenger``,
    the main run, a challenger; MLServer's topics only without). With ``delete_topics``
    (a shared cluster; a throw-away broker goes as a whole), every topic under the run's
    prefix is deleted on exit, the gateway's reply topic included."""
    model = SklearnModel(MODEL, fit_artifact(), topics)
    ensure_topics(make_admin(kafka), model.specs(partitions, mlserver=not challenger))
    try:
        with Registry(kafka, topics, actor="bench", signer=signer) as registry:
            registry.register_artifact_bytes(
                MODEL, model.artifact, SCHEMA, task="classification", fmt="joblib",
                role="champion", description="modelstream bench: sklearn champion",
            )  # fmt: skip
            if challenger:
                registry.register_artifact_bytes(
                    MODEL, fit_artifact(c=CHALLENGER_C), SCHEMA, task="classification",
                    fmt="joblib", role="challenger",
                    description=f"modelstream bench: sklearn challenger, C={CHALLENGER_C}",
                )  # fmt: skip
        yield model
    finally:
        if delete_topics:
            _delete_prefixed(kafka, topics.prefix + ".")


def _delete_prefixed(kafka: KafkaConfig, prefix: str) -> None:
    """Best effort, like the bench's own topics: the run's prefix is used by no other."""
    admin = make_admin(kafka)
    names = [name for name in admin.list_topics(timeout=10).topics if name.startswith(prefix)]
    if not names:
        return
    futures: dict[str, Any] = admin.delete_topics(names, operation_timeout=30)
    for future in futures.values():
        with contextlib.suppress(Exception):
            future.result()
