"""A batch run without Kafka: the door's refusals, failures, chunks, columns, summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.batch import (
    BatchError,
    FileOutput,
    InputError,
    Job,
    Summary,
    admit,
    exact_chunks,
    from_rows,
    run_batch,
    score_chunk,
)
from streams.scoring import Frame, score
from tests.unit.services.batch_support import SCHEMA, deployment, row


def _run(tmp_path: Path, rows: list[dict[str, Any]], *, size: int = 4, **dep: Any) -> tuple[
    Summary, pa.Table
]:  # fmt: skip
    names = list(rows[0]) if rows else ["x0", "x1", "x2", "group"]
    source = from_rows("SELECT * FROM t", names, [[r.get(n) for n in names] for r in rows])
    target = tmp_path / "out.parquet"
    summary = run_batch(
        Job(deployment(**dep), source, size, "k", "1/-/-"), FileOutput(target), None
    )
    return summary, pq.read_table(target)


def test_refused_rows_are_written_with_the_door_s_reason(tmp_path: Path) -> None:
    rows = [row(i) for i in range(10)]
    rows[3]["x1"] = None  # null where a double is required
    rows[7]["group"] = None  # null where a string is required
    summary, out = _run(tmp_path, rows)
    assert (summary.rows, summary.scored, summary.refused, summary.failed) == (10, 8, 2, 0)
    assert summary.exit_code == 2
    errors = out.column("error").to_pylist()
    assert errors[3] == "wrong_type: field 'x1': expected double, got null"
    assert errors[7] == "wrong_type: field 'group': expected string, got null"
    assert [e is None for e in errors].count(True) == 8
    for i in (3, 7):
        assert out.column("prediction")[i].as_py() is None
        assert out.column("served_by")[i].as_py() is None
        assert out.column("model_version")[i].as_py() is None


def test_batch_scores_equal_the_scorer_s_on_the_same_rows(tmp_path: Path) -> None:
    rows = [row(i) for i in range(9)]
    _, out = _run(tmp_path, rows, size=4)
    dep = deployment()
    names = [f["name"] for f in SCHEMA["fields"]]
    expected = score(dep, Frame([dep.codec.check(r) for r in rows], names), score_policy())
    assert out.column("prediction").to_pylist() == [r.served.output for r in expected]
    for label in ("True", "False"):
        got = out.column(f"probability_{label}").to_pylist()
        assert got == [(r.served.probabilities or {})[label] for r in expected]


def score_policy() -> Any:
    from services.batch import BATCH_POLICY

    return BATCH_POLICY


class Failing:
    """A River-style classifier that raises for negative x0."""

    def predict_proba_one(self, x: dict[str, Any]) -> dict[Any, float]:
        if x["x0"] < 0:
            raise ValueError("x0 must not be negative")
        return {True: 0.25, False: 0.75}

    def predict_one(self, x: dict[str, Any]) -> Any:
        return False


def test_a_model_failure_is_a_failed_row_not_a_crash(tmp_path: Path) -> None:
    rows = [row(i) for i in range(-2, 3)]
    summary, out = _run(tmp_path, rows, champion=Failing())
    assert (summary.scored, summary.failed, summary.exit_code) == (3, 2, 2)
    assert out.column("served_by").to_pylist() == ["none", "none", "champion", "champion",
                                                  "champion"]  # fmt: skip
    assert out.column("error")[0].as_py() == "model_failed: ValueError: x0 must not be negative"
    assert out.column("model_version").to_pylist() == [1] * 5


def test_columns_not_in_the_schema_are_carried_not_scored(tmp_path: Path) -> None:
    rows = [{"customer": f"c{i}", **row(i)} for i in range(3)]
    summary, out = _run(tmp_path, rows)
    assert summary.refused == 0
    assert out.column_names[:5] == ["customer", "x0", "x1", "x2", "group"]
    assert out.column("customer").to_pylist() == ["c0", "c1", "c2"]


def test_a_missing_schema_column_refuses_every_row(tmp_path: Path) -> None:
    rows = [{k: v for k, v in row(i).items() if k != "x2"} for i in range(3)]
    summary, out = _run(tmp_path, rows)
    assert summary.refused == 3
    assert out.column("error")[0].as_py().startswith("missing_field: field 'x2'")


def test_an_input_column_named_like_an_output_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="prediction, which scoring adds"):
        _run(tmp_path, [{"prediction": 1, **row(0)}])


def test_an_empty_input_still_writes_every_column(tmp_path: Path) -> None:
    summary, out = _run(tmp_path, [], challenger=True)
    assert summary.rows == 0 and summary.exit_code == 0 and out.num_rows == 0
    assert out.column_names == ["x0", "x1", "x2", "group", "prediction", "model_version",
                                "served_by", "error", "challenger_prediction",
                                "challenger_version"]  # fmt: skip


def test_challenger_columns(tmp_path: Path) -> None:
    summary, out = _run(tmp_path, [row(i) for i in range(5)], challenger=True)
    assert summary.exit_code == 0
    assert set(out.column("challenger_version").to_pylist()) == {2}
    assert None not in out.column("challenger_prediction").to_pylist()
    assert "challenger_probability_True" in out.column_names


def test_a_class_first_seen_after_the_first_chunk_is_an_error() -> None:
    class Late:
        def __init__(self) -> None:
            self.calls = 0

        def predict_proba_one(self, x: dict[str, Any]) -> dict[Any, float]:
            return {"a": 1.0} if x["x0"] < 1 else {"a": 0.5, "b": 0.5}

        def predict_one(self, x: dict[str, Any]) -> Any:
            return "a"

    from services.batch import Layout

    dep = deployment(champion=Late())
    first = score_chunk(dep, [row(0)])
    later = score_chunk(dep, [row(20)])
    layout = Layout.of(dep, first)
    with pytest.raises(BatchError, match="class 'b' appeared after the first chunk"):
        layout.columns(dep, later)


def test_chunks_are_exact_whatever_the_batches() -> None:
    batches = [pa.record_batch({"a": list(range(n))}) for n in (3, 0, 5, 1)]
    assert [t.num_rows for t in exact_chunks(batches, 4)] == [4, 4, 1]


def test_the_door_is_the_scorer_s_json_check() -> None:
    dep = deployment()
    records = [row(0), {**row(1), "x0": "1.5"}, {**row(2), "x0": float("inf")}]
    seen = admit(dep.codec, records)
    assert seen.indices == [0]
    assert [(r.index, r.reason) for r in seen.refused] == [(1, "wrong_type"), (2, "wrong_type")]
    for refusal in seen.refused:  # the DLQ payload is the request the row would have been
        with pytest.raises(Exception, match=refusal.message.split(":")[0]):
            dep.codec.decode_json(refusal.value)


def test_the_summary_line() -> None:
    line = Summary(10, 8, 2, 0, 0, 8, 2.0, "/data/out.parquet").line()
    assert line == ("scored 8 of 10 rows (2 refused, 0 failed) in 2.0s, 5 rows/s; logged 0 "
                    "(8 logged by an earlier run) → /data/out.parquet")  # fmt: skip


class RecordingLog:
    """Stands in for :class:`PredictionLog` (whose Kafka side the integration test runs):
    a marker at ``done``, and what each transaction would hold."""

    dlq = "p.m.dlq"

    def __init__(self, done: int) -> None:
        self.done = done
        self.transactions: list[tuple[int, list[bytes]]] = []

    def start(self) -> int:
        return self.done

    def write(self, messages: Any, logged: int, about: dict[str, Any]) -> int:
        keys = [key for _, key, _, _ in messages]
        self.transactions.append((logged, keys))
        return len(keys)


def test_a_rerun_logs_only_the_rows_past_the_marker(tmp_path: Path) -> None:
    names = ["x0", "x1", "x2", "group"]
    source = from_rows("q", names, [[row(i)[n] for n in names] for i in range(30)])
    log = RecordingLog(done=15)  # a killed run with --batch-size 5 got through row 14
    job = Job(deployment(), source, 10, "k", "1/-/-")
    summary = run_batch(job, FileOutput(tmp_path / "o.parquet"), log)  # type: ignore[arg-type]
    assert (summary.already_logged, summary.logged, summary.scored) == (15, 15, 30)
    assert [logged for logged, _ in log.transactions] == [20, 30]  # chunk 0 is all in
    keys = [k.decode().rsplit("-", 1)[1] for _, ks in log.transactions for k in ks]
    assert keys == [str(i) for i in range(15, 30)]
    assert pq.read_table(tmp_path / "o.parquet").num_rows == 30  # the output has every row
