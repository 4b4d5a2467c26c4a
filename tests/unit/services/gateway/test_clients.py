"""The client registry without a broker: tokens, scopes, records, token lookup."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from services.gateway.clients import (
    SCOPE_FORMS,
    ClientDirectory,
    ClientError,
    ClientRecord,
    InvalidClientError,
    InvalidScopeError,
    Limits,
    new_token,
    parse_scopes,
    token_digest,
    token_id_of,
    validate_client_name,
)
from services.gateway.clients._index import decode
from streams.kafka import KafkaConfig, Topics

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def make_record(
    name: str = "ana", scopes: tuple[str, ...] = ("predict:demo",)
) -> tuple[ClientRecord, str]:
    token_id, token = new_token()
    record = ClientRecord(name, token_id, token_digest(token), scopes, created_at=NOW)
    return record, token


@pytest.fixture
def directory() -> ClientDirectory:
    """A directory that never started: its index is fed through ``_apply``."""
    return ClientDirectory(KafkaConfig("127.0.0.1:1"), Topics("unit"))


# -- tokens


def test_token_format() -> None:
    token_id, token = new_token()
    prefix, tid, secret = token[:3], token[3:15], token[16:]
    assert (prefix, tid, token[15]) == ("ms_", token_id, "_")
    assert len(token_id) == 12 and int(token_id, 16) >= 0
    assert len(secret) == 43  # secrets.token_urlsafe(32)
    assert token_id_of(token) == token_id


def test_tokens_are_unique() -> None:
    tokens = {new_token()[1] for _ in range(1_000)}
    assert len(tokens) == 1_000


def test_digest_is_the_hex_sha256_of_the_token() -> None:
    _, token = new_token()
    assert token_digest(token) == hashlib.sha256(token.encode()).hexdigest()


GOOD = "ms_0123456789ab_" + "A" * 43
GARBAGE: list[object] = [
    "",
    "ms_",
    "Bearer " + GOOD,
    GOOD + " ",
    GOOD[:-1],
    GOOD + "A",
    GOOD.replace("ms_", "MS_"),
    GOOD.replace("0123456789ab", "0123456789AB"),
    GOOD.replace("0123456789ab", "0123456789zz"),
    GOOD[:15] + "-" + GOOD[16:],
    GOOD[:-1] + "é",
    GOOD[:-1] + "\n",
    GOOD[:-1] + "\x00",
    GOOD[:-1] + "\ud800",
    "x" * 1_000_000,
    None,
    GOOD.encode(),
    12,
    ["ms_"],
]


def test_token_id_of_a_good_token() -> None:
    assert token_id_of(GOOD) == "0123456789ab"


@pytest.mark.parametrize("garbage", GARBAGE, ids=range(len(GARBAGE)))
def test_token_id_of_garbage_is_none(garbage: object) -> None:
    assert token_id_of(garbage) is None


# -- scopes


def test_parse_scopes() -> None:
    assert parse_scopes("predict:demo,catalogue:read") == ("predict:demo", "catalogue:read")
    assert parse_scopes(" admin , ,batch:* ") == ("admin", "batch:*")
    assert parse_scopes(["predict:a", "predict:a", "batch:b"]) == ("predict:a", "batch:b")


@pytest.mark.parametrize(
    "bad",
    ["", " , ", "read", "predict", "predict:", "predict:a.b", "predict:a b", "catalogue:write",
     "deploy:demo", "admin:demo", "predict:" + "x" * 101, "Predict:demo", "predict:**"],
)  # fmt: skip
def test_bad_scopes_are_refused_listing_the_valid_forms(bad: str) -> None:
    with pytest.raises(InvalidScopeError) as info:
        parse_scopes(bad)
    message = str(info.value)
    assert all(form in message for form in SCOPE_FORMS)
    assert isinstance(info.value, ClientError) and isinstance(info.value, ValueError)


ALLOWS = [
    # scopes held,                 wanted,           allowed
    (("admin",), "predict:demo", True),
    (("admin",), "batch:other", True),
    (("admin",), "catalogue:read", True),
    (("predict:demo",), "predict:demo", True),
    (("predict:demo",), "predict:other", False),
    (("predict:demo",), "batch:demo", False),
    (("predict:demo",), "catalogue:read", False),
    (("predict:demo",), "admin", False),
    (("predict:*",), "predict:anything", True),
    (("predict:*",), "batch:anything", False),
    (("predict:*",), "admin", False),
    (("batch:*",), "batch:demo", True),
    (("batch:demo",), "batch:demo", True),
    (("batch:demo",), "predict:demo", False),
    (("catalogue:read",), "catalogue:read", True),
    (("catalogue:read",), "predict:demo", False),
    (("predict:demo", "catalogue:read"), "catalogue:read", True),
    (("predict:*",), "garbage", False),
    (("predict:*",), "", False),
]


@pytest.mark.parametrize(("scopes", "wanted", "allowed"), ALLOWS)
def test_allows_matrix(scopes: tuple[str, ...], wanted: str, allowed: bool) -> None:
    record, _ = make_record(scopes=scopes)
    assert record.allows(wanted) is allowed


def test_a_revoked_client_allows_nothing() -> None:
    record, _ = make_record(scopes=("admin",))
    revoked = record.revoke(at=NOW, by="ops")
    assert not revoked.active and not revoked.allows("predict:demo")


# -- records


@pytest.mark.parametrize("name", ["ana", "billing-svc_2", "x" * 100])
def test_good_client_names(name: str) -> None:
    assert validate_client_name(name) == name


@pytest.mark.parametrize("name", ["", "a b", "a.b", "x" * 101, "é", "ana\n"])
def test_bad_client_names(name: str) -> None:
    with pytest.raises(InvalidClientError, match="1-100 letters"):
        validate_client_name(name)


def test_repr_never_shows_the_digest() -> None:
    record, token = make_record()
    assert record.token_sha256 not in repr(record)
    assert record.token_sha256 not in str(record)
    assert token not in repr(record)
    assert record.token_id in repr(record)


def test_record_round_trips_through_json() -> None:
    record, _ = make_record(scopes=("predict:*", "catalogue:read"))
    record = ClientRecord(
        record.name, record.token_id, record.token_sha256, record.scopes,
        Limits(rate_per_s=3, quota=10), "the billing job", NOW, "ana",
    ).revoke(at=NOW + timedelta(days=1), by="ops")  # fmt: skip
    again = ClientRecord.from_dict(orjson.loads(orjson.dumps(record.to_dict())))
    assert again == record
    assert again.revoked_at == NOW + timedelta(days=1)


def test_display_dict_has_no_digest() -> None:
    record, _ = make_record()
    assert "token_sha256" not in record.to_dict(digest=False)
    assert record.to_dict()["token_sha256"] == record.token_sha256


@pytest.mark.parametrize(
    "change",
    [
        {"name": "a b"},
        {"token_id": "XYZ"},
        {"token_sha256": "abc"},
        {"scopes": ["deploy:x"]},
        {"scopes": "admin"},
        {"limits": {"burst": 0}},
        {"created_at": "yesterday"},
        {"created_at": "2025-05-01T12:00:00"},  # no UTC offset
        {"created_at": 12},
        {"revoked_at": "soon"},
    ],
)
def test_from_dict_refuses_bad_records(change: dict[str, object]) -> None:
    record, _ = make_record()
    with pytest.raises(InvalidClientError):
        ClientRecord.from_dict(record.to_dict() | change)


def test_from_dict_refuses_a_missing_field() -> None:
    data = make_record()[0].to_dict()
    del data["token_id"]
    with pytest.raises(InvalidClientError, match="token_id"):
        ClientRecord.from_dict(data)


def test_decode_checks_the_key() -> None:
    record, _ = make_record("ana")
    value = orjson.dumps(record.to_dict())
    assert decode(b"ana", value) == ("ana", record)
    assert decode(b"ana", None) == ("ana", None)
    for key, bad in [(b"bob", value), (b"ana", b"{not json"), (b"ana", b"[]"), (None, value)]:
        with pytest.raises(InvalidClientError):
            decode(key, bad)


# -- the directory's index


def test_authenticate_finds_the_client(directory: ClientDirectory) -> None:
    record, token = make_record()
    directory._apply(record)
    assert directory.authenticate(token) == record
    assert directory.get("ana") == record
    assert directory.names() == ["ana"]


@pytest.mark.parametrize("garbage", GARBAGE, ids=range(len(GARBAGE)))
def test_authenticate_garbage_is_none(directory: ClientDirectory, garbage: object) -> None:
    directory._apply(make_record()[0])
    assert directory.authenticate(garbage) is None  # type: ignore[arg-type]


def test_authenticate_unknown_token_id(directory: ClientDirectory) -> None:
    directory._apply(make_record()[0])
    assert directory.authenticate(new_token()[1]) is None


def test_authenticate_right_id_wrong_secret(directory: ClientDirectory) -> None:
    record, token = make_record()
    directory._apply(record)
    forged = token[:16] + ("A" if token[16] != "A" else "B") + token[17:]
    assert token_id_of(forged) == record.token_id
    assert directory.authenticate(forged) is None


def test_authenticate_revoked(directory: ClientDirectory) -> None:
    record, token = make_record()
    directory._apply(record)
    directory._apply(record.revoke(at=NOW, by="ops"))
    assert directory.authenticate(token) is None
    assert directory.names() == []
    assert directory.names(include_revoked=True) == ["ana"]


def test_rotation_retires_the_old_token(directory: ClientDirectory) -> None:
    record, old = make_record()
    directory._apply(record)
    token_id, new = new_token()
    directory._apply(record.rotate(token_id, token_digest(new), at=NOW, by="ops"))
    assert directory.authenticate(old) is None
    authenticated = directory.authenticate(new)
    assert authenticated is not None and authenticated.token_id == token_id
    assert len(directory) == 1


def test_recreated_client_has_only_its_new_token(directory: ClientDirectory) -> None:
    first, old = make_record()
    directory._apply(first.revoke(at=NOW, by="ops"))
    second, new = make_record()
    directory._apply(second)
    assert directory.authenticate(old) is None
    assert directory.authenticate(new) == second


def test_sync_before_start_is_a_programming_error(directory: ClientDirectory) -> None:
    with pytest.raises(RuntimeError, match="start"):
        directory.sync(0.1)
