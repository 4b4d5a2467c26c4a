"""The ``--via-kafka`` gateway's phase of ``modelstream bench --gateway``: ``modelstream
run gateway --via-kafka`` in front of the running scorer, ``POST /v1/models/<name>/predict``
(``gateway_kafka_rps``). Each request crosses Kafka twice: requests topic → scorer →
reply topic, answered once its scorer transaction committed. The CPU of the gateway and
of the scorer is metered during the load.
"""

from __future__ import annotations

from services.bench._gateway import (
    KEEP_EVERY,
    GatewayClient,
    HttpRun,
    Load,
    gateway_body,
    gateway_probabilities,
    gateway_request,
    gateway_service,
    measure_rest,
    ready_url,
    running,
)
from services.bench._mlserver import free_port
from services.bench._progress import Display
from services.bench._sklearn import SklearnModel
from services.bench._stack import BenchStack

__all__ = ["run_gateway_kafka"]


def run_gateway_kafka(
    stack: BenchStack, model: SklearnModel, load: Load, display: Display, *,
    client: GatewayClient, scorer_pid: int,
) -> HttpRun:  # fmt: skip
    """``run gateway --via-kafka`` in front of the running scorer (``scorer_pid``): check
    rows, load; the gateway is stopped on the way out."""
    port = free_port()
    service = gateway_service(stack, port, "bench-kafka", "--via-kafka")
    url, headers = gateway_request(model.name, client, port)
    bodies = [gateway_body(row) for row in load.rows]
    with running(service, ready_url(port), display, "gateway --via-kafka"):
        return measure_rest(display, "gateway --via-kafka (REST)", service, url, bodies, load,
                            headers=headers, probabilities=gateway_probabilities,
                            cpu={"gateway_kafka": service.pid, "scorer": scorer_pid},
                            keep_every=KEEP_EVERY)  # fmt: skip
