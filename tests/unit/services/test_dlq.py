"""The DLQ tool's pure parts: --since, positions, filters, the headers a re-drive sends,
re-drive records, previews, and the CLI's argument checks (no broker)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from services.dlq import (
    DlqEntry,
    Position,
    RedriveRecord,
    Selection,
    SelectionError,
    parse_position,
    parse_since,
    preview,
    redrive_headers,
)
from services.dlq.cli import _split, app
from streams.scoring.envelope import dlq_headers, parse_request

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def entry(headers: list[tuple[str, bytes | None]], offset: int = 0, ts: int = 0) -> DlqEntry:
    return DlqEntry(Position("ms.loan.dlq", 1, offset), ts, b"k", b"{}", 2, headers)


@dataclass
class _Message:
    """What parse_request reads of a confluent-kafka message."""

    _headers: list[tuple[str, bytes]]
    _key: bytes | None

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes:
        return b"{}"

    def topic(self) -> str:
        return "ms.loan.requests"

    def partition(self) -> int:
        return 2

    def offset(self) -> int:
        return 40


def scorer_entry(request_headers: list[tuple[str, bytes]], key: bytes | None = None) -> DlqEntry:
    """An entry as the scorer writes it: its own request parsing and dlq_headers."""
    request = parse_request(_Message(request_headers, key))
    headers = dlq_headers(request, "loan", "unknown_model", "route", "no model named 'loan'")
    return DlqEntry(Position("ms.loan.dlq", 2, 7), 0, key, b"{}", 2, list(headers))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", datetime(2026, 12, 7, 11, 58, 30, tzinfo=UTC)),
        ("15m", datetime(2026, 12, 7, 11, 45, tzinfo=UTC)),
        (" 1H ", datetime(2026, 12, 7, 11, 0, tzinfo=UTC)),
        ("1.5h", datetime(2026, 12, 7, 10, 30, tzinfo=UTC)),
        ("2d", datetime(2026, 12, 5, 12, 0, tzinfo=UTC)),
        ("1w", datetime(2026, 11, 30, 12, 0, tzinfo=UTC)),
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-07T10:00:00Z", datetime(2026, 12, 7, 10, 0, tzinfo=UTC)),
        ("2026-12-07T10:00-05:00", datetime(2026, 12, 7, 15, 0, tzinfo=UTC)),
    ],
)
def test_since_reads_durations_and_iso_times_as_utc(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected
    assert parse_since(text, NOW).tzinfo is UTC


@pytest.mark.parametrize("text", ["", "yesterday", "1y", "-1h", "h1", "2026-13-01"])
def test_since_refuses_what_it_cannot_read_and_says_what_it_takes(text: str) -> None:
    with pytest.raises(SelectionError, match=r"30s, 15m, 1h, 2d, 1w.*ISO time"):
        parse_since(text, NOW)


def test_a_selection_error_is_a_value_error_so_friendly_errors_prints_it() -> None:
    assert issubclass(SelectionError, ValueError)


def test_positions_round_trip_and_request_ids_are_not_positions() -> None:
    for text in ("ms.loan.dlq[0]@0", "a-b_c.x.dlq[12]@123456789"):
        position = parse_position(text)
        assert position is not None and str(position) == text
    assert parse_position("ms.loan.dlq[0]") is None
    assert parse_position("r-17") is None
    assert parse_position("ms.loan.dlq[x]@1") is None


def test_selection_combines_reason_since_request_id_and_positions() -> None:
    e = entry([("ms-reason", b"wrong_type"), ("ms-request-id", b"r-9")], offset=4, ts=10_000)
    assert Selection().matches(e)
    assert Selection(reasons=("missing_field", "wrong_type")).matches(e)
    assert not Selection(reasons=("missing_field",)).matches(e)
    assert Selection(since_ms=10_000).matches(e) and not Selection(since_ms=10_001).matches(e)
    assert Selection(request_id="r-9").matches(e) and not Selection(request_id="r-1").matches(e)
    assert Selection(positions=frozenset({Position("ms.loan.dlq", 1, 4)})).matches(e)
    both = Selection(reasons=("wrong_type",), request_id="r-1")
    assert not both.matches(e)


def test_redrive_sends_the_original_headers_without_the_dlqs_own() -> None:
    original = [("content-type", b"application/json"), ("client-id", b"app"),
                ("reply-to", b"ms.loan.replies"), ("request-id", b"r-1"),
                ("traceparent", b"00-abc")]  # fmt: skip
    sent = redrive_headers(scorer_entry(original, key=b"k"))
    assert sent == [
        ("content-type", b"application/json"),
        ("client-id", b"app"),
        ("reply-to", b"ms.loan.replies"),
        ("traceparent", b"00-abc"),
        ("request-id", b"r-1"),
        ("ms-redrive-of", b"ms.loan.dlq[2]@7"),
    ]


def test_redrive_keeps_an_id_the_scorer_made_up_from_the_position() -> None:
    """No key, no request-id header: the scorer named the request after its position; the
    re-driven copy carries that name, not the position it will land at."""
    sent = dict(redrive_headers(scorer_entry([("content-type", b"application/json")])))
    assert sent["request-id"] == b"ms.loan.requests-2-40"
    assert not [name for name in sent if name.startswith("ms-") and name != "ms-redrive-of"]


def test_redrive_of_a_gateway_refusal_gets_the_request_id_header_it_lacked() -> None:
    gateway = [("content-type", b"application/json"), ("client-id", b"web"),
               ("ms-reason", b"wrong_type"), ("ms-stage", b"gateway"),
               ("ms-request-id", b"gw-1"), ("ms-source-topic", b"http:gateway-0")]  # fmt: skip
    sent = redrive_headers(entry(gateway))
    assert sent[:3] == [("content-type", b"application/json"), ("client-id", b"web"),
                        ("request-id", b"gw-1")]  # fmt: skip


def test_redrive_keeps_null_headers_and_a_second_refusals_trace_is_dropped() -> None:
    headers = [("x-null", None), ("ms-redrive-of", b"ms.loan.dlq[0]@1"),
               ("ms-truncated", b"9000000")]  # fmt: skip
    sent = redrive_headers(entry(headers, offset=3))
    assert sent == [("x-null", None), ("ms-redrive-of", b"ms.loan.dlq[1]@3")]


def test_entry_reads_its_model_from_the_topic_and_knows_truncation() -> None:
    e = entry([("ms-model", b"other"), ("ms-truncated", b"9000000"), ("client-id", None)])
    assert e.model == "loan"  # the topic decides where a re-drive goes
    assert e.truncated and e.client_id == ""
    assert not entry([]).truncated


def test_records_round_trip_and_foreign_values_are_ignored() -> None:
    record = RedriveRecord(Position("ms.loan.dlq", 0, 1), "r-1", "ms.loan.requests[0]@5",
                           "2026-12-07T10:00:00.000+00:00", "ana", 2)  # fmt: skip
    assert RedriveRecord.from_bytes(record.to_bytes()) == record
    assert record.key == b"ms.loan.dlq[0]@1"
    for foreign in (None, b"", b"[]", b'{"entry": "nope"}', b'{"entry": "t[0]@1"}'):
        assert RedriveRecord.from_bytes(foreign) is None


def test_split_skips_what_was_re_driven_unless_again() -> None:
    a, b = entry([], offset=1), entry([], offset=2)
    done = {b.position: RedriveRecord(b.position, "", "", "2026-12-07T10:00:00+00:00", "x", 1)}
    assert _split([a, b], done, again=False) == ([a], [b])
    assert _split([a, b], done, again=True) == ([a, b], [])


def test_preview_indents_json_escapes_binary_and_cuts_long_values() -> None:
    assert preview(b'{"a":[1,2]}') == '{\n  "a": [\n    1,\n    2\n  ]\n}'
    assert preview(b"\xc3\x01\x00\xff") == "b'\\xc3\\x01\\x00\\xff'"
    long = preview(b"x" * 10_000, limit=100)
    assert long.startswith("b'xxx") and long.endswith("(10000 bytes in all; --raw writes them)")


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["list", "--model", "m", "--all"],
        ["redrive", "--yes"],
        ["redrive", "--model", "m", "--entry", "not-a-position"],
        ["list", "--model", "m", "--limit", "0"],
        ["list", "--model", "m", "--since", "yesterday"],
        ["redrive", "--all", "--since", "1y"],
        ["show", "r-1", "--all", "--since", "soon"],
        ["show", "r-1"],
    ],
)
def test_cli_refuses_bad_arguments_before_reaching_kafka(args: list[str]) -> None:
    result = CliRunner().invoke(app, args, env={"MODELSTREAM_KAFKA": "127.0.0.1:1"})
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
