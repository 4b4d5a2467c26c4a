"""Batch output: written aside and renamed, nothing partial; Parquet and CSV round trips."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from services.batch import FileOutput, InputError, Job, from_file, run_batch, table_name
from services.batch._write import clickhouse_type
from tests.unit.services.batch_support import deployment, row


def _table(start: int, n: int) -> pa.Table:
    return pa.table({"a": list(range(start, start + n)), "b": [f"s{i}" for i in range(n)]})


def test_the_file_appears_only_at_commit(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    output = FileOutput(target)
    output.write(_table(0, 3), 0)
    output.write(_table(3, 2), 1)
    assert not target.exists() and output.aside.exists()
    assert output.aside.parent == tmp_path and output.aside.name.startswith("out.parquet.tmp-")
    output.commit()
    assert pq.read_table(target).column("a").to_pylist() == [0, 1, 2, 3, 4]
    assert list(tmp_path.iterdir()) == [target]


def test_a_failed_run_leaves_the_previous_output_and_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    pq.write_table(_table(100, 1), target)
    with pytest.raises(RuntimeError), FileOutput(target) as output:
        output.write(_table(0, 3), 0)
        raise RuntimeError("killed half-way")
    assert pq.read_table(target).column("a").to_pylist() == [100]
    assert list(tmp_path.iterdir()) == [target]


def test_commit_replaces_an_older_output(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    output = FileOutput(target)
    output.write(_table(0, 2), 0)
    output.commit()
    assert pa_csv.read_csv(target).column("a").to_pylist() == [0, 1]


def test_output_needs_a_known_suffix_and_an_existing_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"expected a \.parquet or \.csv file, got '\.json'"):
        FileOutput(tmp_path / "out.json")
    with pytest.raises(InputError, match="no such directory"):
        FileOutput(tmp_path / "missing" / "out.parquet")


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_scored_rows_round_trip(tmp_path: Path, suffix: str) -> None:
    """Input columns, an extra id column and the added columns survive either format."""
    rows = [{"id": f"c{i}", **row(i)} for i in range(25)]
    source_path = tmp_path / f"in{suffix}"
    table = pa.Table.from_pylist(rows)
    if suffix == ".csv":
        pa_csv.write_csv(table, source_path)
    else:
        pq.write_table(table, source_path)
    dep = deployment(challenger=True)
    source = from_file(source_path, ["group"])
    target = tmp_path / f"out{suffix}"
    summary = run_batch(Job(dep, source, 10, "k", "1/2/-"), FileOutput(target), None)
    labels = {"prediction": pa.string(), "challenger_prediction": pa.string()}  # not bool
    read = (pq.read_table(target) if suffix == ".parquet" else pa_csv.read_csv(
        target, convert_options=pa_csv.ConvertOptions(column_types=labels)))  # fmt: skip
    direct = dep.champion.predictor.predict([{k: v for k, v in r.items() if k != "id"}
                                             for r in rows])  # fmt: skip
    assert summary.rows == summary.scored == 25 and summary.exit_code == 0
    assert read.column("id").to_pylist() == [r["id"] for r in rows]
    assert read.column("prediction").to_pylist() == [o.output for o in direct]
    probabilities = read.column("probability_True").to_pylist()
    assert probabilities == [(o.probabilities or {})["True"] for o in direct]
    assert set(read.column("model_version").to_pylist()) == {1}
    assert set(read.column("challenger_version").to_pylist()) == {2}
    assert set(read.column("served_by").to_pylist()) == {"champion"}


def test_csv_text_columns_stay_text(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("x0,x1,x2,group\n1,2,3,007\n")
    source = from_file(path, ["group"])
    (chunk,) = source.chunks(10)
    assert chunk.to_pylist() == [{"x0": 1, "x1": 2, "x2": 3, "group": "007"}]


def test_table_names_are_identifiers() -> None:
    assert table_name("db.scored") == "`db`.`scored`"
    for bad in ("a-b", "a.b.c", "", "x`y"):
        with pytest.raises(InputError):
            table_name(bad)


def test_clickhouse_types_are_nullable_and_known() -> None:
    assert clickhouse_type(pa.int32()) == "Nullable(Int32)"
    assert clickhouse_type(pa.string()) == "Nullable(String)"
    with pytest.raises(InputError, match="cannot go to a ClickHouse table"):
        clickhouse_type(pa.list_(pa.int8()))
