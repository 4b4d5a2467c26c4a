"""Signed versions: what a signature binds, which versions a Trust lets through, key
files, the signature record, and the CLI's settings -> Signer / Trust."""

from __future__ import annotations

import dataclasses
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.registry import (
    KeyFileError,
    ModelVersion,
    Signature,
    Signer,
    Trust,
    UntrustedVersionError,
    key_id,
    load_public_keys,
    local_signer,
)
from services.registry._state import RegistryState
from services.registry._wire import SignatureKey, codec, parse_key, signature_key
from services.registry.cli import models_app, signer_from, trust_from
from services.settings import Settings

SCHEMA = {"type": "record", "name": "In", "fields": [{"name": "x", "type": "double"}]}


def version(**fields: object) -> ModelVersion:
    base: dict[str, object] = {
        "name": "churn", "version": 3, "task": "classification", "input_schema": SCHEMA,
        "features": ("x",), "author": "ana", "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "artifact_format": "cloudpickle", "artifact_sha256": "ab" * 32, "artifact_size": 99,
        "chunk_count": 1,
    }  # fmt: skip
    return ModelVersion(**{**base, **fields})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate()


def test_a_trusted_signature_passes(signer: Signer) -> None:
    mv = version()
    signature = signer.sign(mv)
    assert signature.key_id == key_id(signer.public_key) and len(signature.value) == 64
    Trust.of(signer.public_key).check(mv, signature)


@pytest.mark.parametrize(
    "change",
    [
        {"artifact_sha256": "cd" * 32},  # other artifact bytes
        {"artifact_size": 100},
        {"artifact_format": "joblib"},
        {"version": 4},  # replayed onto another version
        {"name": "fraud"},
        {"task": "regression"},
        {"features": ("y",)},
        {"input_schema": {**SCHEMA, "fields": [{"name": "x", "type": "string"}]}},
    ],
)
def test_tampered_metadata_is_refused_even_when_unsigned_are_allowed(
    signer: Signer, change: dict[str, object]
) -> None:
    signature = signer.sign(version())
    tampered = dataclasses.replace(version(), **change)  # type: ignore[arg-type]
    for allow in (False, True):
        with pytest.raises(UntrustedVersionError, match="does not match its metadata"):
            Trust.of(signer.public_key, allow_unsigned=allow).check(tampered, signature)


def test_fields_outside_the_signature_may_change(signer: Signer) -> None:
    """Lineage (author, description) is not what decides which code runs."""
    signature = signer.sign(version())
    Trust.of(signer.public_key).check(version(description="edited", author="bob"), signature)


def test_a_tampered_signature_is_refused(signer: Signer) -> None:
    signature = signer.sign(version())
    flipped = Signature(signature.key_id, bytes([signature.value[0] ^ 1]) + signature.value[1:])
    with pytest.raises(UntrustedVersionError, match="does not match"):
        Trust.of(signer.public_key).check(version(), flipped)


def test_a_signature_cannot_claim_another_key(signer: Signer) -> None:
    other = Signer.generate()
    forged = Signature(other.key_id, signer.sign(version()).value)
    with pytest.raises(UntrustedVersionError, match="does not match"):
        Trust.of(signer.public_key, other.public_key).check(version(), forged)


def test_an_unknown_key_is_refused_with_what_to_do(signer: Signer) -> None:
    stranger = Signer.generate()
    with pytest.raises(UntrustedVersionError) as caught:
        Trust.of(signer.public_key).check(version(), stranger.sign(version()))
    message = str(caught.value)
    assert f"churn v3 is signed by key {stranger.key_id}" in message
    assert f"trusted: {signer.key_id}" in message and "MODELSTREAM_TRUSTED_KEYS" in message
    with pytest.raises(UntrustedVersionError, match="trusted: none"):
        Trust().check(version(), stranger.sign(version()))


def test_unsigned_is_refused_by_default_and_allowed_when_told(signer: Signer) -> None:
    with pytest.raises(UntrustedVersionError, match=r"churn v3 is unsigned.*MODELSTREAM_"):
        Trust.of(signer.public_key).check(version(), None)
    Trust.of(signer.public_key, allow_unsigned=True).check(version(), None)
    Trust.of(allow_unsigned=True).check(version(), Signer.generate().sign(version()))
    Trust.unchecked().check(version(), None)


def test_key_files_round_trip_with_private_permissions(tmp_path: Path, signer: Signer) -> None:
    path = tmp_path / "keys" / "registry.key"
    public = signer.save(path)
    assert public == tmp_path / "keys" / "registry.pub"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert Signer.load(path).key_id == signer.key_id
    (loaded,) = load_public_keys([public])
    assert key_id(loaded) == signer.key_id
    assert [key_id(k) for k in load_public_keys([path.parent])] == [signer.key_id]
    with pytest.raises(FileExistsError):
        Signer.generate().save(path)  # a key is never overwritten


def test_bad_key_files_say_which(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pub"
    junk.write_text("not a key")
    with pytest.raises(KeyFileError, match=r"junk\.pub"):
        load_public_keys([junk])
    with pytest.raises(KeyFileError, match="does not exist"):
        load_public_keys([tmp_path / "missing.pub"])
    assert load_public_keys([tmp_path / "missing"], missing_ok=True) == []
    with pytest.raises(KeyFileError, match="keys init"):
        Signer.load(tmp_path / "none.key")


def test_local_signer_creates_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "keys" / "registry.key"
    with pytest.raises(KeyFileError):
        local_signer(path, create=False)
    first = local_signer(path, create=True)
    assert "created the registry signing key" in caplog.text
    caplog.clear()
    assert local_signer(path, create=True).key_id == first.key_id
    assert "created" not in caplog.text


def test_signature_records_round_trip_and_are_kept_per_version(signer: Signer) -> None:
    assert parse_key(signature_key("churn", 3)) == SignatureKey("churn", 3)
    signature = signer.sign(version())
    record = {"model": "churn", "version": 3, "key_id": signature.key_id,
              "signature": signature.value}  # fmt: skip
    assert codec("signature").decode_avro(codec("signature").encode_avro(record)) == record
    state = RegistryState()
    state.set_signature("churn", 3, signature)
    assert state.signature("churn", 3) == signature and state.signature("churn", 2) is None
    state.set_signature("churn", 3, None)  # tombstone
    assert state.signature("churn", 3) is None


def test_settings_make_the_signer_and_trust(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert trust_from(settings) == Trust({}, allow_unsigned=False)  # no key yet: trust none
    signer = signer_from(settings)  # created on first use, in the data dir
    assert (tmp_path / "keys" / "registry.key").exists()
    assert set(trust_from(settings).keys) == {signer.key_id}  # and trusted locally
    assert signer_from(settings).key_id == signer.key_id
    other = Signer.generate()
    other_pub = other.save(tmp_path / "elsewhere" / "w.key")
    chosen = Settings(data_dir=tmp_path, trusted_keys=f"{other_pub}", allow_unsigned=True)
    assert set(trust_from(chosen).keys) == {other.key_id} and trust_from(chosen).allow_unsigned
    with pytest.raises(KeyFileError):
        trust_from(Settings(data_dir=tmp_path, trusted_keys=str(tmp_path / "nope")))
    explicit = Settings(data_dir=tmp_path, signing_key=tmp_path / "missing.key")
    with pytest.raises(KeyFileError):  # an explicit key is never created behind your back
        signer_from(explicit)


def test_keys_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELSTREAM_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    shown = runner.invoke(models_app, ["keys", "show"])
    assert shown.exit_code == 0 and "no signing key" in shown.output
    made = runner.invoke(models_app, ["keys", "init"])
    assert made.exit_code == 0, made.output
    signer = Signer.load(tmp_path / "keys" / "registry.key")
    assert signer.key_id in made.output and "BEGIN PUBLIC KEY" in made.output
    again = runner.invoke(models_app, ["keys", "init"])
    assert again.exit_code == 1 and "already exists" in again.output
    shown = runner.invoke(models_app, ["keys", "show"])
    assert shown.exit_code == 0
    assert f"trusted keys: {signer.key_id}" in shown.output
    assert signer.public_pem().decode() in shown.output


def test_a_key_made_after_the_server_started_is_trusted_from_its_directory(
    tmp_path: Path,
) -> None:
    """`modelstream up` starts scorers and gateways before the first registration makes
    the local key: a key id they do not know sends them to read their key sources again."""
    keys = tmp_path / "keys"
    trust = trust_from(Settings(data_dir=tmp_path, trusted_keys=""))
    assert trust.keys == {}
    signer = local_signer(keys / "registry.key", create=True)
    mv = version()
    trust.check(mv, signer.sign(mv))  # read again: now trusted
    stranger = Signer.generate()
    with pytest.raises(UntrustedVersionError, match="not trusted here"):
        trust.check(mv, stranger.sign(mv))
