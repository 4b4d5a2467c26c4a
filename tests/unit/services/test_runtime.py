"""kafka_config fails fast, in one line that says what to do. No broker: closed ports."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.localstack import BrokerStatus, LocalBroker, LocalStackError, free_port
from services.runtime import KafkaUnreachableError, NoKafkaError, kafka_config, unreachable_message
from services.settings import Settings
from streams.kafka_probe import AddressFailure, Reach


def test_a_closed_bootstrap_is_one_line_naming_the_address_and_the_fix(tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(KafkaUnreachableError) as info:
        kafka_config(Settings(kafka=f"127.0.0.1:{port}", data_dir=tmp_path))
    assert isinstance(info.value, NoKafkaError | LocalStackError)
    assert str(info.value) == (
        f"cannot reach Kafka at 127.0.0.1:{port} (connection refused): is the broker running? "
        "Check MODELSTREAM_KAFKA, or unset it and start the local broker with "
        "`modelstream kafka start`."
    )


def test_an_unknown_host_says_so() -> None:
    failure = AddressFailure("kafka.invalid:9092", "unknown_host", "host not found")
    reach = Reach("kafka.invalid:9092", None, (failure,))
    message = unreachable_message(reach, None, Settings())
    assert message.startswith(
        "cannot reach Kafka at kafka.invalid:9092 (host not found): is the host name right? "
    )
    assert "\n" not in message


def test_a_bootstrap_that_is_not_host_port_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KafkaUnreachableError, match="'kafka:nine' is not host:port"):
        kafka_config(Settings(kafka="kafka:nine", data_dir=tmp_path))


def test_no_local_broker_says_how_to_start_one(tmp_path: Path) -> None:
    settings = Settings(kafka=None, data_dir=tmp_path)
    with pytest.raises(NoKafkaError) as info:
        kafka_config(settings)
    assert "no local broker runs from" in str(info.value)
    assert "`modelstream kafka start`" in str(info.value)
    assert "ran before" not in str(info.value)


def test_a_local_broker_that_died_points_at_its_log(tmp_path: Path) -> None:
    settings = Settings(kafka=None, data_dir=tmp_path)
    log_file = LocalBroker(settings.kafka_dir, tmp_path).log_file
    log_file.parent.mkdir(parents=True)
    log_file.write_text("[2026-12-01] ERROR Shutting down\n")
    with pytest.raises(NoKafkaError, match=f"one ran before; its log: {log_file}"):
        kafka_config(settings)


def test_a_local_broker_that_runs_but_does_not_answer_says_restart(tmp_path: Path) -> None:
    settings = Settings(kafka=None, data_dir=tmp_path)
    local = BrokerStatus(True, 4242, "127.0.0.1:1", settings.kafka_dir)
    failure = AddressFailure("127.0.0.1:1", "refused", "connection refused")
    reach = Reach("127.0.0.1:1", None, (failure,))
    assert unreachable_message(reach, local, settings) == (
        "the local broker (pid 4242) does not answer at 127.0.0.1:1 (connection refused): it may "
        f"be starting or stuck; see {settings.kafka_dir.absolute()}/logs/server.log, or restart "
        "it with `modelstream kafka stop` and `modelstream kafka start`."
    )
