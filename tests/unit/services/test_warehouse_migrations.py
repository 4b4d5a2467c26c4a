"""Migration files: splitting, TTL templating, loading, and a contract over the shipped SQL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.warehouse import (
    MIGRATIONS_DIR,
    Migration,
    MigrationError,
    load_migrations,
    render,
    split_statements,
)

SHIPPED = load_migrations()


def test_split_on_semicolon_at_line_end_only() -> None:
    sql = (
        "-- header; with a semicolon\n"
        "CREATE TABLE a (s String COMMENT 'x; y') ENGINE = Memory;\n"
        "\n"
        "CREATE VIEW b AS SELECT 1;   \n"
        "SELECT 2"
    )

    assert split_statements(sql) == [
        "-- header; with a semicolon\nCREATE TABLE a (s String COMMENT 'x; y') ENGINE = Memory",
        "CREATE VIEW b AS SELECT 1",
        "SELECT 2",
    ]


@pytest.mark.parametrize("sql", ["", "\n\n", "-- nothing here;\n-- at all\n", ";\n"])
def test_split_drops_empty_and_comment_only_pieces(sql: str) -> None:
    assert split_statements(sql) == []


def test_render_fills_the_ttl_or_drops_its_line() -> None:
    sql = "ORDER BY ts\nTTL toDateTime(ts) + INTERVAL {ttl_days} DAY\nSETTINGS a = 1"

    assert render(sql, 90) == "ORDER BY ts\nTTL toDateTime(ts) + INTERVAL 90 DAY\nSETTINGS a = 1"
    assert render(sql, 0) == "ORDER BY ts\nSETTINGS a = 1"


@pytest.mark.parametrize("bad", [-1, 1.5, True, "30"])
def test_render_rejects_a_bad_ttl(bad: object) -> None:
    with pytest.raises(ValueError, match="expected ttl_days"):
        render("SELECT 1", bad)  # type: ignore[arg-type]


def test_load_orders_by_number_and_skips_nothing(tmp_path: Path) -> None:
    (tmp_path / "010_b.sql").write_text("SELECT 10;\n")
    (tmp_path / "002_a.sql").write_text("SELECT 2;\n")

    got = load_migrations(tmp_path)

    assert [(m.version, m.name, m.label) for m in got] == [(2, "a", "002_a"), (10, "b", "010_b")]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["001_a.sql", "001_b.sql"], "one migration per number"),
        (["1_a.sql"], "NNN_name.sql"),
        (["001_Upper.sql"], "NNN_name.sql"),
    ],
)
def test_load_refuses_ambiguous_files(tmp_path: Path, files: list[str], message: str) -> None:
    for name in files:
        (tmp_path / name).write_text("SELECT 1;\n")

    with pytest.raises(MigrationError, match=message):
        load_migrations(tmp_path)


def test_checksum_follows_the_text_not_the_ttl() -> None:
    one = Migration(1, "a", "SELECT 1;\n")

    assert one.checksum == Migration(1, "a", "SELECT 1;\n").checksum
    assert one.checksum != Migration(1, "a", "SELECT 1; \n").checksum
    assert one.statements(0) == one.statements(30) == ["SELECT 1"]


def test_shipped_migrations_are_numbered_from_one_without_gaps() -> None:
    assert [m.version for m in SHIPPED] == list(range(1, len(SHIPPED) + 1))
    assert SHIPPED[0].label == "001_predictions"
    assert MIGRATIONS_DIR.is_dir()


@pytest.mark.parametrize("migration", SHIPPED, ids=lambda m: m.label)
def test_every_shipped_statement_is_idempotent(migration: Migration) -> None:
    # a table is created once; a view may be replaced by a later migration (a new query)
    for statement in map(_code, migration.statements(30)):
        idempotent = r"\bIF NOT EXISTS\b|^CREATE OR REPLACE VIEW\b"
        assert re.search(idempotent, statement.strip()), f"{migration.label}: {statement[:60]}"


@pytest.mark.parametrize("migration", SHIPPED, ids=lambda m: m.label)
def test_shipped_tables_follow_the_house_rules(migration: Migration) -> None:
    for statement in map(_code, migration.statements(0)):
        if "CREATE TABLE" not in statement:
            continue
        # ReplacingMergeTree where one row per key must survive a record landed twice
        assert re.search(r"ENGINE = (Replacing)?MergeTree\n", statement)
        if "reference_profiles" not in statement:  # a few rows per version, no time
            assert re.search(r"PARTITION BY toDate\((ts|window_start)\)", statement)
            assert re.search(r"ORDER BY \(model, .*(ts|window_start)", statement)
        assert re.search(r"ORDER BY \(model, ", statement)
        assert "non_replicated_deduplication_window = 1000" in statement
        assert "{ttl_days}" not in statement
        body = statement[statement.index("(") + 1 : statement.index("\n)")]
        for line in body.splitlines():
            column = line.strip()
            if column and not column.startswith("INDEX "):
                assert " COMMENT '" in column, f"{migration.label}: no comment on {column}"


@pytest.mark.parametrize("migration", SHIPPED, ids=lambda m: m.label)
def test_the_ttl_lands_where_it_is_templated(migration: Migration) -> None:
    templated = "{ttl_days}" in migration.sql

    assert ("INTERVAL 45 DAY" in "".join(migration.statements(45))) == templated
    assert "INTERVAL" not in "".join(migration.statements(0))


def _code(statement: str) -> str:
    return "\n".join(ln for ln in statement.splitlines() if not ln.lstrip().startswith("--"))
