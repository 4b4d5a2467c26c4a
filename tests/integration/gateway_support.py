"""Helpers for gateway tests: ``modelstream run gateway`` as a real subprocess beside a real
scorer, and clients made through the real client registry."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from services.gateway.clients import ClientStore
from services.gateway.policy import Limits
from services.gateway.service import wait_ready
from services.localstack import free_port
from streams.kafka import KafkaConfig
from tests.integration.scoring_support import MODELSTREAM, ScorerProcess, Stack


class GatewayProcess:
    """``modelstream run gateway`` on a free loopback port."""

    def __init__(self, stack: Stack, *args: str, instance: str = "t") -> None:
        self.stack, self.args, self.instance = stack, args, instance
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = stack.tmp / f"gateway-{instance}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> GatewayProcess:
        env = (
            os.environ
            | kafka_env(self.stack.kafka)
            | {
                "MODELSTREAM_TOPIC_PREFIX": self.stack.topics.prefix,
                "MODELSTREAM_DATA_DIR": str(self.stack.tmp / "data"),
            }
        )
        cmd = [MODELSTREAM, "run", "gateway", "--port", str(self.port),
               "--instance", self.instance, *self.args]  # fmt: skip
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        if wait_ready(self.url, self.proc, timeout):
            return self
        if self.proc.poll() is not None:
            raise AssertionError(f"gateway exited early:\n{self.log.read_text()[-3000:]}")
        raise AssertionError(f"gateway not ready in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> str:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.log.read_text()


def kafka_env(kafka: KafkaConfig) -> dict[str, str]:
    """The settings a modelstream process needs to reach ``kafka`` as its principal."""
    env = {"MODELSTREAM_KAFKA": kafka.bootstrap,
           "MODELSTREAM_KAFKA_SECURITY_PROTOCOL": kafka.security_protocol}  # fmt: skip
    if kafka.sasl_mechanism:
        env |= {
            "MODELSTREAM_KAFKA_SASL_MECHANISM": kafka.sasl_mechanism,
            "MODELSTREAM_KAFKA_USERNAME": kafka.username or "",
            "MODELSTREAM_KAFKA_PASSWORD": kafka.password or "",
        }
    return env


@dataclass
class Running:
    """A stack with a scorer and a gateway running, and a way to make clients."""

    stack: Stack
    gateway: GatewayProcess
    clients: ClientStore
    mode: str = "via-kafka"

    @property
    def url(self) -> str:
        return self.gateway.url

    def client(self, name: str, scopes: list[str], **limits: Any) -> str:
        """A new client's token (the running gateway sees it within a moment)."""
        _, token = self.clients.create(name, scopes, limits=Limits(**limits) if limits else None)
        wait_until_known(self.url, token)
        return token


def wait_until_known(url: str, token: str, timeout: float = 10.0) -> None:
    """Until the gateway's client directory has caught up with a just-made token."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.get(f"{url}/v2/models/none", headers=bearer(token), timeout=5)
        if answer.status_code != 401:
            return
        time.sleep(0.05)
    raise AssertionError("the gateway never learned the new client's token")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


MODES = ("direct", "via-kafka")  # how a gateway answers: in-process, or through the scorer


@contextmanager
def running(stack: Stack, *gateway_args: str, mode: str = "via-kafka") -> Iterator[Running]:
    """A gateway (and, ``via-kafka``, the scorer behind it) over ``stack``."""
    clients = ClientStore(stack.kafka, stack.topics)
    if mode == "direct":
        gateway = GatewayProcess(stack, *gateway_args)
        gateway.start()
        try:
            yield Running(stack, gateway, clients, mode)
        finally:
            gateway.stop()
        return
    gateway = GatewayProcess(stack, "--via-kafka", *gateway_args)
    with ScorerProcess(stack):
        gateway.start()
        try:
            yield Running(stack, gateway, clients)
        finally:
            gateway.stop()
            clients.close()
