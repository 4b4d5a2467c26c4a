"""``modelstream score``'s exit codes and messages, without a broker: 1 for usage and
input errors, 3 when Kafka cannot be reached."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from services.batch import UnreachableError
from services.batch.cli import _exit_code, score
from services.runtime import KafkaUnreachableError
from services.warehouse import QueryError, WarehouseUnavailable


def _invoke(tmp_path: Path, *args: str, kafka: str = "") -> Result:
    command = typer.Typer()
    command.command()(score)
    env = {"MODELSTREAM_DATA_DIR": str(tmp_path / "data"), "MODELSTREAM_KAFKA": kafka}
    return CliRunner().invoke(command, list(args), env=env)


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["m", "--output", "o.parquet"], "give the rows to score"),
        (["m", "--input", "i.csv", "--sql", "SELECT 1", "--output", "o.csv"], "one of them"),
        (["m", "--input", "i.csv"], "say where the scores go"),
        (["m", "--input", "i.csv", "--output", "o.csv", "--table", "t"], "one of them"),
        (["m", "--input", "i.csv", "--output", "o.txt"], "expected a .parquet or .csv file"),
        (["m", "--input", "i.csv", "--output", "o.csv", "--batch-size", "0"],
         "--batch-size 0: expected 1 or more"),
        (["m", "--input", "same.csv", "--output", "same.csv"], "is the input"),
    ],
)  # fmt: skip
def test_usage_errors_exit_1_and_say_what_to_do(tmp_path: Path, args: list[str], says: str) -> None:
    result = _invoke(tmp_path, *args)
    assert result.exit_code == 1, result.output
    assert says in " ".join(result.output.split())


def test_kafka_unreachable_exits_3(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_text("x0\n1\n")
    result = _invoke(tmp_path, "m", "--input", str(data), "--output", str(tmp_path / "o.csv"),
                     kafka=_closed_port())  # fmt: skip
    assert result.exit_code == 3, result.output
    assert "cannot reach Kafka" in " ".join(result.output.split())
    assert not list(tmp_path.glob("o.csv*"))


def test_exit_codes_of_known_failures() -> None:
    assert _exit_code(UnreachableError("x")) == 3
    assert _exit_code(KafkaUnreachableError("x")) == 3
    assert _exit_code(WarehouseUnavailable("x")) == 3
    assert _exit_code(QueryError("x")) == 1
    assert _exit_code(RuntimeError("a bug")) is None  # shown with its traceback
