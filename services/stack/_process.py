"""One detached ``modelstream run`` process, found again from its state file.

The state file ``<data dir>/run/<part>.json`` holds the pid, the command and the log
file. A pid counts as the part only while ``/proc/<pid>/cmdline`` still is that command,
so a stale file (a reboot, a kill -9) reads as "not running", never as somebody else's
process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from services.localstack import wait_gone
from services.private import private_dir
from services.stack._parts import Part

__all__ = ["PartProcess", "PartStatus"]


@dataclass(frozen=True)
class PartStatus:
    """What ``modelstream status`` says about one part."""

    name: str
    running: bool
    pid: int | None
    log: Path
    url: str | None = None


class PartProcess:
    """Start, find, wait for and stop one part of the data dir ``data_dir``."""

    def __init__(self, part: Part, data_dir: Path, exe: str, env: Mapping[str, str]) -> None:
        self.part = part
        self.exe = exe
        self.env = dict(env)
        self.state_file = data_dir.absolute() / "run" / f"{part.name}.json"
        self.log = data_dir.absolute() / "logs" / f"{part.name}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    def _state(self) -> dict[str, object]:
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def status(self) -> PartStatus:
        state = self._state()
        pid, url, command = state.get("pid"), state.get("url"), state.get("command")
        if isinstance(pid, int) and isinstance(command, list) and self._is_ours(pid, command):
            link = url if isinstance(url, str) else None
            return PartStatus(self.part.name, True, pid, self.log, link)
        return PartStatus(self.part.name, False, None, self.log)

    @staticmethod
    def _is_ours(pid: int, command: list[str]) -> bool:
        """Whether ``pid`` still runs ``command`` (its last arguments), not a zombie."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            return False
        return cmdline.split(b"\0")[-len(command) - 1 : -1] == [str(a).encode() for a in command]

    def start(self) -> None:
        """Spawn the part detached from this process (its own session, stdin closed)."""
        private_dir(self.log.parent)
        private_dir(self.state_file.parent)
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self._process = subprocess.Popen(
                [self.exe, *self.part.command()], stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=self.env, start_new_session=True,
            )  # fmt: skip
        state = {"pid": self._process.pid, "command": self.part.command(), "url": self.part.url,
                 "log": str(self.log), "started_at": time.time()}  # fmt: skip
        self.state_file.write_text(json.dumps(state))

    def ready(self) -> bool:
        """Whether the part just started says it serves (raises if it exited)."""
        process = self._process
        if process is not None and process.poll() is not None:
            raise ChildProcessError(
                f"the {self.part.name} exited with code {process.returncode} before it was "
                f"ready; last lines of {self.log}:\n{self.log_tail()}"
            )
        if self.part.ready_url is not None:
            try:
                return httpx.get(self.part.ready_url, timeout=1.0).status_code == 200
            except httpx.TransportError:
                return False
        with self.log.open("rb") as log:
            log.seek(self._log_offset)
            return b" ready" in log.read()

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM (the part finishes its batch and leaves its group), SIGKILL after
        ``timeout``. Returns whether it was running."""
        current = self.status()
        stopped = False
        if current.running and current.pid is not None:
            os.kill(current.pid, signal.SIGTERM)
            if not wait_gone(current.pid, timeout):
                os.kill(current.pid, signal.SIGKILL)
                wait_gone(current.pid, 5.0)
            stopped = True
        self.state_file.unlink(missing_ok=True)
        return stopped
