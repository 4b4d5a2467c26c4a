"""Archives of model versions: the on-disk round trip, its checks, and how the registry
state treats a removed (tombstoned) and restored version."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from services.registry import (
    Archive,
    ArchiveError,
    ModelVersion,
    RoutingError,
    Signer,
    Trust,
    UnknownModelError,
    read_archive,
)
from services.registry._archive import MANIFEST, pieces, write_archive
from services.registry._model import Routing
from services.registry._routing import refuse_removal
from services.registry._state import RegistryState
from services.registry._wire import keys_of

DATA = bytes(range(256)) * 40
SCHEMA = {"type": "record", "name": "In", "fields": [{"name": "x", "type": "double"}]}


def version(number: int = 3, data: bytes = DATA) -> ModelVersion:
    return ModelVersion(
        "churn", number, "classification", SCHEMA, ("x",), "ana",
        datetime(2026, 1, 1, 12, 30, 15, 123000, tzinfo=UTC), "cloudpickle",
        hashlib.sha256(data).hexdigest(), len(data), 3, description="May retrain",
        hyperparameters={"C": "1.0"}, training_metrics={"auc": 0.91}, code_version="abc123",
        reference_profile={"x": {"kind": "numeric", "bins": [0.0, 1.0]}},
        classes=("no", "yes"), positive_label="yes", environment={"python": "3.12"},
    )  # fmt: skip


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate()


def signed(signer: Signer, mv: ModelVersion | None = None) -> Archive:
    mv = mv or version()
    return Archive(mv, signer.sign(mv), DATA)


def test_a_signed_version_round_trips_byte_identical(tmp_path: Path, signer: Signer) -> None:
    archive = signed(signer)
    path = write_archive(tmp_path, archive)

    assert path == tmp_path / "churn-v3"
    assert sorted(p.name for p in path.iterdir()) == [
        MANIFEST, "artifact.cloudpickle", "metadata.json", "signature.json"
    ]  # fmt: skip
    assert (path / "artifact.cloudpickle").read_bytes() == DATA
    back = read_archive(path)
    assert back == archive  # metadata field for field, same signature bytes, same artifact
    Trust.of(signer.public_key).check(back.version, back.signature)
    manifest = orjson.loads((path / MANIFEST).read_bytes())
    assert manifest["signed_by"] == signer.key_id
    assert manifest["files"]["artifact.cloudpickle"] == hashlib.sha256(DATA).hexdigest()
    assert [p.name for p in tmp_path.iterdir()] == ["churn-v3"]  # nothing left aside


def test_an_unsigned_version_has_no_signature_file(tmp_path: Path) -> None:
    path = write_archive(tmp_path, Archive(version(), None, DATA))
    assert not (path / "signature.json").exists()
    assert read_archive(path).signature is None


def test_archiving_again_is_a_no_op_but_a_different_archive_is_refused(
    tmp_path: Path, signer: Signer
) -> None:
    path = write_archive(tmp_path, signed(signer))
    before = (path / MANIFEST).read_bytes()
    assert write_archive(tmp_path, signed(signer)) == path
    assert (path / MANIFEST).read_bytes() == before

    other = Archive(version(), None, DATA)  # same version, unsigned: another archive
    with pytest.raises(ArchiveError, match="already holds a different archive of churn v3"):
        write_archive(tmp_path, other)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / "artifact.cloudpickle").write_bytes(DATA[:-1]), "does not match its SHA"),
        (lambda p: (p / "signature.json").unlink(), "signature.json is missing"),
        (lambda p: (p / MANIFEST).unlink(), "is not a model archive"),
        (lambda p: (p / MANIFEST).write_text("{"), "is not JSON"),
    ],
    ids=["altered artifact", "missing signature", "no manifest", "bad manifest"],
)
def test_a_damaged_archive_is_refused(
    tmp_path: Path, signer: Signer, damage: object, message: str
) -> None:
    path = write_archive(tmp_path, signed(signer))
    damage(path)  # type: ignore[operator]
    with pytest.raises(ArchiveError, match=message):
        read_archive(path)


def test_metadata_that_disagrees_with_the_artifact_is_refused(
    tmp_path: Path, signer: Signer
) -> None:
    """A consistent manifest over a swapped artifact still fails: the metadata's SHA-256
    (which the signature covers) must match the bytes."""
    other = b"not the model" * 10
    path = write_archive(tmp_path, Archive(version(), None, other))
    with pytest.raises(ArchiveError, match="does not match the SHA-256 its metadata records"):
        read_archive(path)


def test_pieces_keep_the_recorded_chunk_count() -> None:
    for size, count in [(10, 4), (9, 5), (1000, 2), (DATA.__len__(), 3), (1, 1)]:
        data = bytes(size)
        chunks = pieces(data, count)
        assert len(chunks) == count and b"".join(chunks) == data
    with pytest.raises(ArchiveError, match="cannot be split into 5 chunks"):
        pieces(bytes(4), 5)


def test_every_key_of_a_version_is_tombstoned_metadata_first() -> None:
    assert keys_of(version()) == [
        "churn/3", "churn/3/signature", "churn/3/chunk/0", "churn/3/chunk/1", "churn/3/chunk/2"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("routing", "role", "hint"),
    [
        (Routing("churn", champion=3), "champion", "models promote churn"),
        (Routing("churn", champion=1, challenger=3), "challenger", "clear-challenger churn"),
        (Routing("churn", champion=1, backup=3), "backup", "clear-backup churn"),
    ],
)
def test_a_routed_version_cannot_be_removed(routing: Routing, role: str, hint: str) -> None:
    with pytest.raises(RoutingError, match=f"churn v3 is the {role}, so it was not removed"):
        refuse_removal(routing, "churn", 3)
    with pytest.raises(RoutingError, match=hint):
        refuse_removal(routing, "churn", 3)
    refuse_removal(Routing("churn", champion=1, previous_champions=(3,)), "churn", 3)
    refuse_removal(None, "churn", 3)


def test_state_forgets_a_tombstoned_version_and_takes_a_restored_one_back(
    signer: Signer,
) -> None:
    state = RegistryState()
    for number, offset in [(1, 0), (3, 10)]:
        for index in range(3):
            state.add_chunk("churn", number, index, offset=offset + index)
        mv = version(number)
        state.set_signature("churn", number, signer.sign(mv))
        state.add_version(mv)

    state.remove_version("churn", 3)  # the tombstones, in the order they are written
    state.set_signature("churn", 3, None)
    for index in range(3):
        state.add_chunk("churn", 3, index, offset=None)
    assert [mv.version for mv in state.versions("churn")] == [1]
    assert state.signature("churn", 3) is None
    assert state.next_version("churn") == 4  # a removed number is not handed out again

    restored = version(3)
    for index in range(3):
        state.add_chunk("churn", 3, index, offset=20 + index)
    state.set_signature("churn", 3, signer.sign(restored))
    state.add_version(restored)
    assert [mv.version for mv in state.versions("churn")] == [1, 3]
    assert state.chunk_offsets("churn", 3) == [20, 21, 22]
    Trust.of(signer.public_key).check(state.version("churn", 3), state.signature("churn", 3))

    state.remove_version("churn", 1)
    state.remove_version("churn", 3)
    with pytest.raises(UnknownModelError):
        state.versions("churn")
    assert state.models() == []
