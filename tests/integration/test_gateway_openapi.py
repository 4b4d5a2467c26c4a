"""schemathesis against the running gateway's own OpenAPI document: generated requests
(valid and invalid) to every operation never get a 5xx, and every response matches the
status codes, content types and schemas the document declares.

The stack is real: a broker and the gateway subprocess, scoring directly (its default).
One run sends whatever the model name; another pins it to the registered model so bodies
reach the contract check, the model and the journal.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from services.registry import Registry
from streams.kafka import KafkaConfig, Topics, ensure_topics, make_admin
from tests.integration.gateway_support import Running, bearer, running
from tests.integration.scoring_support import Stack, trained

pytestmark = pytest.mark.integration
POSITIVE = GenerationMode.POSITIVE
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def live(kafka: KafkaConfig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    topics = Topics(f"oas-{uuid.uuid4().hex[:8]}")
    ensure_topics(make_admin(kafka), topics.global_specs(1))
    registry = Registry(kafka, topics, actor="tests")
    stack = Stack(kafka, topics, registry, Path(tmp_path_factory.mktemp("oas")))
    stack.add_model("m", trained()[0])
    with running(stack, "--timeout-ms", "3000", mode="direct") as handle:
        yield handle
    registry.close()


@pytest.fixture(scope="module")
def token(live: Running) -> str:
    return live.client("fuzzer", ["admin"], rate_per_s=100_000.0, burst=100_000)


@pytest.fixture(scope="module")
def api(live: Running) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{live.url}/openapi.json")


def fuzz(api: schemathesis.BaseSchema, url: str, token: str, *, pin: bool) -> list[str]:
    """Every operation, positive and negative data; the failures, one line each."""
    failures = []
    for result in api.get_all_operations():
        operation = result.ok()
        pinned = {"name": "m"} if pin and "{name}" in operation.path else None
        # negative data needs something to negate: only bodies are constrained here
        modes = list(GenerationMode) if operation.method.lower() == "post" else [POSITIVE]
        for mode in modes:
            strategy = operation.as_strategy(mode, path_parameters=pinned)

            @settings(max_examples=10, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            @given(case=strategy)
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url=url, headers=bearer(token), checks=CHECKS)

            try:
                check()
            except Unsatisfiable:
                failures.append(f"{operation.label} [{mode.value}]: no case could be generated")
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported together
                failures.append(f"{operation.label} [{mode.value}]: {str(exc)[:1500]}")
    return failures


def test_any_model_name(api: schemathesis.BaseSchema, live: Running, token: str) -> None:
    assert len(list(api.get_all_operations())) >= 8
    failures = fuzz(api, live.url, token, pin=False)
    assert not failures, "\n\n".join(failures)


def test_the_registered_model(api: schemathesis.BaseSchema, live: Running, token: str) -> None:
    failures = fuzz(api, live.url, token, pin=True)
    assert not failures, "\n\n".join(failures)


def test_without_a_token_nothing_is_served(live: Running) -> None:
    """The same document, unauthenticated: every model operation answers 401, not 5xx."""
    import httpx

    paths = httpx.get(f"{live.url}/openapi.json").json()["paths"]
    model_ops = [(m, p) for p, ops in paths.items() for m in ops if "{name}" in p]
    assert model_ops
    for method, path in model_ops:
        answer = httpx.request(method, f"{live.url}{path.replace('{name}', 'm')}",
                               json={}, timeout=10)  # fmt: skip
        assert answer.status_code == 401, (method, path, answer.text)
