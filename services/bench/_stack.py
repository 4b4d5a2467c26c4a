"""What one bench run stands on: a broker, a fresh topic prefix, the registered models.

``MODELSTREAM_KAFKA`` set: that cluster, and the run's topics are deleted afterwards.
Unset: a throw-away single-node broker in the run's temporary directory, stopped at the
end. Either way every topic has a prefix no other run uses, and the registry holds a
River StandardScaler → LogisticRegression champion and a differently tuned challenger on
ten numeric features (``services.synthetic``); with ``swap_model`` a second model,
:data:`SWAP_MODEL`, the same pair on topics of its own, for the champion swap.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from services.bench._faust_variants import VARIANTS
from services.localstack import LocalBroker, resolve_jars
from services.registry import Registry, Signer, local_signer
from services.runtime import kafka_config
from services.settings import Settings
from services.synthetic import input_schema, labelled_rows, river_challenger, river_champion
from streams.kafka import KafkaConfig, Topics, TopicSpec, ensure_topics, make_admin
from streams.monitoring.stream import MonitorConfig

__all__ = [
    "MODEL",
    "MONITOR_GROUP",
    "SCHEMA",
    "SLEEPY_MODEL",
    "SWAP_MODEL",
    "BenchStack",
    "BenchTopics",
    "bench_stack",
]

MODEL = "bench"
SLEEPY_MODEL = "bench-sleepy"  # its challenger sleeps 50 ms per batch: the shadow impact
SWAP_MODEL = "bench-swap"  # promoted under load: MODEL's routing stays as registered
MONITOR_GROUP = "bench-monitor3"  # MonitorConfig.name of the three-instance monitor
SCHEMA = input_schema(10, sensitive=False)


@dataclass(frozen=True)
class BenchTopics:
    """Every topic of one run; each variant reads its own copy of the requests."""

    topics: Topics
    partitions: int
    swap_model: bool = False

    def _name(self, kind: str) -> str:
        return self.topics.model_topic(MODEL, kind)

    def _reply_topic(self, kind: str) -> str:
        """A reply-to topic of the bench's own: named as a scorer accepts one
        (``<prefix>.<name>.replies``), as any client's must be."""
        return self.topics.model_topic(f"{MODEL}-{kind}", "replies")

    @property
    def prefix(self) -> str:
        return self.topics.prefix

    @property
    def passthrough_in(self) -> str:
        return self._name("passthrough-in")

    @property
    def passthrough_out(self) -> str:
        return self._name("passthrough-out")

    @property
    def passthrough_txn_out(self) -> str:
        return self._name("passthrough-txn-out")

    @property
    def requests(self) -> str:
        return self.topics.requests(MODEL)

    @property
    def replies(self) -> str:
        return self.topics.replies(MODEL)

    @property
    def predictions(self) -> str:
        return self.topics.predictions(MODEL)

    @property
    def latency_replies(self) -> str:
        return self._reply_topic("latency")

    @property
    def swap_requests(self) -> str:
        return self.topics.requests(SWAP_MODEL)

    @property
    def swap_replies(self) -> str:
        return self.topics.replies(SWAP_MODEL)

    @property
    def faust_requests(self) -> str:
        return self._name("faust-requests")

    def faust_replies(self, variant: str) -> str:
        """Each faust variant answers on a topic of its own."""
        return self._name(f"faust-replies-{variant}")

    @property
    def fast_replies(self) -> str:
        """The at-least-once scorer's latency replies."""
        return self._reply_topic("fast")

    def impact_replies(self, model: str) -> str:
        """Replies of the shadow-impact phase's requests to ``model``."""
        return self._reply_topic(f"impact-{model}")

    @property
    def warmup(self) -> str:
        """The broker warm-up's transactions (every partition)."""
        return self._name("warmup")

    @property
    def floor(self) -> str:
        """The transaction floor's records (one partition)."""
        return self._name("floor")

    @property
    def floor_in(self) -> str:
        """The floor's consumer group reads nothing here; its offsets go into each
        transaction, as a scorer's do (one partition)."""
        return self._name("floor-in")

    @property
    def monitor_group_state(self) -> str:
        """The three-instance monitor's state, apart from the single instance's."""
        return MonitorConfig(self.topics, name=MONITOR_GROUP).state_topic

    def specs(self) -> list[TopicSpec]:
        """The registry's topics, the models' topic sets and the bench's own topics."""
        own = [self.passthrough_in, self.passthrough_out, self.passthrough_txn_out,
               self.latency_replies, self.fast_replies, self.faust_requests, self.warmup,
               self.impact_replies(MODEL), self.impact_replies(SLEEPY_MODEL),
               *(self.faust_replies(v.name) for v in VARIANTS)]  # fmt: skip
        rf = self.topics.replication
        models = [MODEL, SLEEPY_MODEL, SWAP_MODEL] if self.swap_model else [MODEL]
        shared = self.topics.global_specs(1)
        state = next(spec for spec in shared if spec.name == self.topics.monitor_state)
        return [
            *shared,
            replace(state, name=self.monitor_group_state),  # compacted, as the monitor's
            *(spec for model in models for spec in self.topics.model_specs(model, self.partitions)),
            *(TopicSpec(name, self.partitions, replication=rf) for name in own),
            *(TopicSpec(name, 1, replication=rf) for name in (self.floor, self.floor_in)),
        ]


@dataclass(frozen=True)
class BenchStack:
    """The broker connection, the run's topics, its scratch directory."""

    kafka: KafkaConfig
    names: BenchTopics
    workdir: Path
    settings: Settings

    def child_env(self) -> dict[str, str]:
        """The environment of a process under test: this one's, pointed at the run."""
        env = dict(os.environ) | {
            "MODELSTREAM_KAFKA": self.kafka.bootstrap,
            "MODELSTREAM_TOPIC_PREFIX": self.names.prefix,
            "MODELSTREAM_DATA_DIR": str(self.workdir / "data"),
            "MODELSTREAM_KAFKA_SECURITY_PROTOCOL": self.kafka.security_protocol,
        }
        optional = {
            "MODELSTREAM_KAFKA_SASL_MECHANISM": self.kafka.sasl_mechanism,
            "MODELSTREAM_KAFKA_USERNAME": self.kafka.username,
            "MODELSTREAM_KAFKA_PASSWORD": self.kafka.password,
        }
        return env | {name: value for name, value in optional.items() if value}

    def scorer_argv(self, *args: str) -> list[str]:
        """``modelstream run scorer ...``, as the installed console script runs it."""
        script = Path(sys.executable).with_name("modelstream")
        if not script.exists():
            found = shutil.which("modelstream")
            script = Path(found) if found else script
        if script.exists():
            return [str(script), "run", "scorer", *args]
        return [sys.executable, "-c", "from services.cli import app; app()", "run", "scorer", *args]


@contextlib.contextmanager
def bench_stack(
    settings: Settings, workdir: Path, *, partitions: int, swap_model: bool = False
) -> Iterator[BenchStack]:
    """Broker (given or started), topics and models for one run; cleaned up on exit.
    ``swap_model``: :data:`SWAP_MODEL` too."""
    broker: LocalBroker | None = None
    if settings.kafka:
        kafka = kafka_config(settings, client_id="bench")
    else:
        libs = resolve_jars(settings.kafka_version, settings.cache_dir)
        broker = LocalBroker(workdir / "kafka", libs, heap_mb=512)
        kafka = KafkaConfig(broker.start(timeout=120), client_id="bench")
    names = BenchTopics(
        Topics(f"{settings.topic_prefix}-bench-{uuid.uuid4().hex[:8]}", settings.topic_replication),
        partitions,
        swap_model,
    )
    try:
        ensure_topics(make_admin(kafka), names.specs())
        models = [MODEL, SLEEPY_MODEL, SWAP_MODEL] if swap_model else [MODEL]
        _register_models(kafka, names.topics, models, bench_signer(workdir))
        yield BenchStack(kafka, names, workdir, settings)
    finally:
        if broker is not None:
            broker.stop()
        else:
            _delete_topics(kafka, names)


def bench_signer(workdir: Path) -> Signer:
    """The run's registry key: its scorers and gateways (data dir ``<workdir>/data``)
    trust the keys in ``<workdir>/data/keys``, as a deployment's would."""
    return local_signer(workdir / "data" / "keys" / "registry.key", create=True)


def _register_models(kafka: KafkaConfig, topics: Topics, models: list[str], signer: Signer) -> None:
    """Each of ``models``: champion v1, challenger v2 (:data:`SLEEPY_MODEL`'s challenger
    sleeps 50 ms per batch)."""
    from services.bench._sleepy import SleepyChallenger

    train = labelled_rows(2_000, sensitive=False)
    champion, challenger = river_champion(train), river_challenger(train)
    features = [field["name"] for field in SCHEMA["fields"]]
    with Registry(kafka, topics, actor="bench", signer=signer) as registry:
        for name in models:
            second = SleepyChallenger(challenger, features) if name == SLEEPY_MODEL else challenger
            for role, model in (("champion", champion), ("challenger", second)):
                registry.register(name, model, SCHEMA, task="classification", role=role,
                                  description=f"modelstream bench {role}")  # fmt: skip


def _delete_topics(kafka: KafkaConfig, names: BenchTopics) -> None:
    """Best effort: a run on a shared cluster should not leave its topics behind."""
    admin = make_admin(kafka)
    futures: dict[str, Any] = admin.delete_topics([s.name for s in names.specs()],
                                                  operation_timeout=30)  # fmt: skip
    for future in futures.values():
        with contextlib.suppress(Exception):
            future.result()
