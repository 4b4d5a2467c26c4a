"""The report file is written aside and renamed into place."""

from __future__ import annotations

import stat
from pathlib import Path

from services.reports.cli import write_atomically


def test_write_atomically_replaces_and_leaves_nothing_aside(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "churn.html"
    assert write_atomically(target, "<p>one</p>") == target.resolve()
    assert write_atomically(target, "<p>two</p>") == target.resolve()
    assert target.read_text() == "<p>two</p>"
    assert [p.name for p in target.parent.iterdir()] == ["churn.html"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
