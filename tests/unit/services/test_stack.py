"""``modelstream up|status|down`` bookkeeping with real processes (a stand-in for the
``modelstream`` command that says ready and waits for SIGTERM): no broker needed."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from services.stack import LocalServices, Part, PartProcess, StackError

FAKE = """\
import signal, sys, time
name = sys.argv[2]
if name == "broken":
    print("broken: cannot start", flush=True)
    sys.exit(3)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print(f"{name} ready", flush=True)
while True:
    time.sleep(0.05)
"""


@pytest.fixture
def exe(tmp_path: Path) -> str:
    script = tmp_path / "fake-modelstream"
    script.write_text(f"#!{sys.executable}\n{FAKE}")
    script.chmod(0o755)
    return str(script)


def test_up_status_down_round_trip(tmp_path: Path, exe: str) -> None:
    parts = (Part("sink"), Part("scorer", ("--model", "a")))
    services = LocalServices(tmp_path, exe, os.environ, parts=parts)
    assert [s.running for s in services.status()] == [False, False]
    ready = []
    statuses = services.up(timeout=30, on_ready=lambda s: ready.append(s.name))
    assert sorted(ready) == ["scorer", "sink"]
    assert all(s.running and s.pid for s in statuses)
    assert (tmp_path / "logs" / "sink.log").read_text().strip() == "sink ready"
    # found again by a new handle (another shell), and not started twice
    again = LocalServices(tmp_path, exe, os.environ, parts=parts)
    assert [s.pid for s in again.up(timeout=30)] == [s.pid for s in statuses]
    assert again.down(timeout=10) == [("scorer", True), ("sink", True)]
    assert [s.running for s in again.status()] == [False, False]
    assert again.down(timeout=10) == [("scorer", False), ("sink", False)]


def test_a_stale_state_file_is_not_a_running_part(tmp_path: Path, exe: str) -> None:
    process = PartProcess(Part("sink"), tmp_path, exe, os.environ)
    process.state_file.parent.mkdir(parents=True)
    # our own pid is alive, but it is not running `run sink`
    process.state_file.write_text(json.dumps({"pid": os.getpid(), "command": ["run", "sink"]}))
    assert not process.status().running
    assert not process.stop(timeout=1)
    assert not process.state_file.exists()


def test_a_part_that_exits_says_why_with_its_log(tmp_path: Path, exe: str) -> None:
    services = LocalServices(tmp_path, exe, os.environ, parts=(Part("broken"),))
    with pytest.raises(StackError, match=r"(?s)broken exited with code 3.*cannot start.*up` again"):
        services.up(timeout=30)


def test_the_gateway_port_taken_by_another_program_is_named(tmp_path: Path, exe: str) -> None:
    import socket

    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        services = LocalServices(tmp_path, exe, os.environ, port=port)
        with pytest.raises(StackError, match=rf"port {port} .* `modelstream up --port {port + 1}`"):
            services.up(timeout=5)
    assert not any(s.running for s in services.status())  # nothing was started
