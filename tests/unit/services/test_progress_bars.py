"""Progress where a person waits, without a network: the broker's jars resolved by a fake
Maven that prints what the real one prints, the CLI keeping its machine-readable lines
when no terminal watches, and the artifact bar's thresholds. The registry's per-chunk
callback is checked against the real broker in tests/integration/test_registry.py."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from services import cli as cli_module
from services.localstack import BrokerError, jars_ready, resolve_jars
from services.registry import cli as registry_cli

# what Maven prints in batch mode, then the jar it copies into -DoutputDirectory
FAKE_MAVEN = """#!/bin/sh
for arg in "$@"; do
  case "$arg" in -DoutputDirectory=*) out="${arg#-DoutputDirectory=}";; esac
done
echo "[INFO] Scanning for projects..."
echo "[INFO] Downloading from central: https://repo.maven.apache.org/maven2/k.pom"
echo "[INFO] Downloaded from central: https://repo.maven.apache.org/maven2/k.pom (2 kB)"
echo "[INFO] Downloaded from central: https://repo.maven.apache.org/maven2/k.jar (6 MB)"
echo "[INFO] Downloaded from central: https://repo.maven.apache.org/maven2/c.jar (1 MB)"
[ -n "$FAIL" ] && { echo "[ERROR] Could not resolve dependencies"; exit 1; }
mkdir -p "$out" && echo jar > "$out/kafka_2.13.jar"
"""


@pytest.fixture
def maven(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mvn = bin_dir / "mvn"
    mvn.write_text(FAKE_MAVEN)
    mvn.chmod(mvn.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return tmp_path / "cache"


def test_resolving_counts_each_file_maven_downloads(maven: Path) -> None:
    counts: list[int] = []
    assert not jars_ready("4.1.1", maven)
    libs = resolve_jars("4.1.1", maven, on_download=counts.append)
    assert counts == [1, 2, 3]
    assert (libs / "kafka_2.13.jar").read_text() == "jar\n"
    assert jars_ready("4.1.1", maven)
    again: list[int] = []
    assert resolve_jars("4.1.1", maven, on_download=again.append) == libs
    assert again == []  # cached: Maven does not run


def test_a_failed_resolution_shows_mavens_last_lines(
    maven: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIL", "1")
    with pytest.raises(BrokerError, match="exit 1") as info:
        resolve_jars("4.1.1", maven, on_download=lambda n: None)
    assert "Could not resolve dependencies" in str(info.value)
    assert not jars_ready("4.1.1", maven)


def test_kafka_jars_keeps_its_line_on_stdout_without_a_terminal(
    maven: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELSTREAM_CACHE_DIR", str(maven))
    result = CliRunner().invoke(cli_module.app, ["kafka", "jars"])
    assert result.exit_code == 0, result.output
    ready, jars = result.stdout.split("\n", 1)  # rich wraps the path at 80 columns
    assert ready.startswith("kafka jars ready (")
    assert jars.replace("\n", "") == f"jars={maven / 'kafka-4.1.1' / 'libs'}"  # no spinner


def test_the_spinner_shows_on_a_terminal_and_clears_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=100)
    monkeypatch.setattr(cli_module, "err", terminal)
    with cli_module._waiting("resolving") as show:
        show("resolving: 3 files downloaded")
    assert "3 files downloaded" in screen.getvalue()


def test_the_artifact_bar_is_for_large_artifacts_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chunk = 512 * 1024
    with registry_cli._chunk_bar(4 * 1024 * 1024 - 1, chunk) as small:
        assert small is None
    monkeypatch.setattr(registry_cli, "err", Console(file=io.StringIO(), force_terminal=False))
    with registry_cli._chunk_bar(64 * 1024 * 1024, chunk) as piped:
        assert piped is None
    screen = io.StringIO()
    monkeypatch.setattr(registry_cli, "err", Console(file=screen, force_terminal=True))
    with registry_cli._chunk_bar(5 * 1024 * 1024, chunk) as on_progress:
        assert on_progress is not None
        for done in range(1, 11):
            on_progress(done, 10)
    assert "writing the artifact" in screen.getvalue()
    assert "5.2/5.2 MB" in screen.getvalue()  # the last chunk completes the bar
