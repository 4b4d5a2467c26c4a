"""Signed monitor snapshots: a tampered, unsigned or foreign snapshot is refused before
anything is unpickled; a good one restores the watch it was taken of. And the key the
monitor process signs with (services.monitor.snapshot_key)."""

from __future__ import annotations

import os
import pickle
import stat
import zlib
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from services.monitor import KEY_FILE, snapshot_key
from services.settings import Settings
from streams.monitoring.errors import MonitorConfigError, SnapshotRefused
from streams.monitoring.snapshots import MAGIC, open_snapshot, seal
from streams.monitoring.watch import ModelWatch
from tests.unit.streams.monitoring.test_watch import record, spec

KEY = b"0123456789abcdef0123456789abcdef"
RAN: list[str] = []


class _Payload:
    """What an attacker would put in a pickle: code that runs on load."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (RAN.append, ("unpickled",))


def test_a_good_snapshot_restores_the_watch() -> None:
    watch = ModelWatch(spec())
    for i in range(300):
        watch.on_prediction(record(i, {"x0": 0.1 * i}))
    restored = open_snapshot(seal(watch, KEY), KEY)
    assert isinstance(restored, ModelWatch)
    assert (restored.events, restored.latest_ts) == (watch.events, watch.latest_ts)
    assert restored.joiner.waiting == watch.joiner.waiting


def test_a_tampered_snapshot_is_refused_before_it_is_unpickled() -> None:
    signed = seal({"ok": 1}, KEY)
    # the attacker swaps the body for their own pickle and keeps the signature
    evil = zlib.compress(pickle.dumps(_Payload()))
    forged = signed[: len(MAGIC) + 32] + evil
    with pytest.raises(SnapshotRefused, match="does not match"):
        open_snapshot(forged, KEY)
    flipped = signed[:-1] + bytes([signed[-1] ^ 0x01])
    with pytest.raises(SnapshotRefused, match="does not match"):
        open_snapshot(flipped, KEY)
    assert RAN == []


def test_unsigned_and_foreign_snapshots_are_refused() -> None:
    legacy = zlib.compress(pickle.dumps(_Payload()))  # as snapshots were before signing
    with pytest.raises(SnapshotRefused, match="not signed"):
        open_snapshot(legacy, KEY)
    with pytest.raises(SnapshotRefused, match="another key"):
        open_snapshot(seal({"ok": 1}, b"x" * 32), KEY)
    with pytest.raises(SnapshotRefused, match="at least 16 bytes"):
        seal({"ok": 1}, b"short")
    assert RAN == []


def test_the_local_key_is_made_once_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    first = snapshot_key(settings)
    assert len(first) == 64
    assert snapshot_key(settings) == first  # a restarted monitor signs with the same key
    assert stat.S_IMODE((data / KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert sorted(p.name for p in data.iterdir()) == [KEY_FILE]


def test_the_key_setting_wins_and_must_be_long_enough(tmp_path: Path) -> None:
    key = "k" * 40
    settings = Settings(data_dir=tmp_path, monitor_snapshot_key=SecretStr(key))
    assert snapshot_key(settings) == key.encode()
    assert not (tmp_path / KEY_FILE).exists()
    with pytest.raises(MonitorConfigError, match="openssl rand -hex 32"):
        snapshot_key(Settings(data_dir=tmp_path, monitor_snapshot_key=SecretStr("short")))
    (tmp_path / KEY_FILE).write_text("")
    os.chmod(tmp_path / KEY_FILE, 0o600)
    with pytest.raises(MonitorConfigError, match="remove the file"):
        snapshot_key(Settings(data_dir=tmp_path))
