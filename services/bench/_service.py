"""A process under test: started like production (its own interpreter, its own log file),
awaited until its log says it is ready, and stopped with SIGTERM (SIGKILL if it hangs)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from services.bench._errors import ServiceError

__all__ = ["Service"]


class Service:
    """One child process whose stdout and stderr go to ``log``."""

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], log: Path, ready: bytes
    ) -> None:
        self.name, self.argv, self.env, self.log, self.ready_marker = name, argv, env, log, ready
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise ServiceError(f"the {self.name} process was not started")
        return self.proc.pid

    def start(self, timeout: float = 90.0) -> Service:
        """Spawn the process and wait until ``ready`` appears in its log."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                list(self.argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=dict(self.env),
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready_marker in self.log.read_bytes():
                return self
            if self.proc.poll() is not None:
                raise ServiceError(
                    f"the {self.name} process exited with code {self.proc.returncode} before "
                    f"it was ready; last log lines:\n{self.tail()}"
                )
            time.sleep(0.05)
        self.stop()
        raise ServiceError(
            f"the {self.name} process did not log {self.ready_marker!r} within {timeout:.0f}s; "
            f"last log lines:\n{self.tail()}"
        )

    def check_alive(self) -> None:
        """Raise :class:`ServiceError` if the process has died."""
        if self.proc is not None and self.proc.poll() is not None:
            raise ServiceError(
                f"the {self.name} process died with code {self.proc.returncode}; last log "
                f"lines:\n{self.tail()}"
            )

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code. Idempotent."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        return proc.returncode

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def __enter__(self) -> Service:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
