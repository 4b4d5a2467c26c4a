"""Every part of one data dir together: start what is not running, wait, stop."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from services.localstack import LocalStackError
from services.stack._parts import PARTS, Part, gateway_part
from services.stack._process import PartProcess, PartStatus

__all__ = ["LocalServices", "StackError"]


class StackError(LocalStackError):
    """A part could not be started (the message names its log and shows its last lines)."""


class LocalServices:
    """The sink, scorer, monitor, merger, lifecycle and gateway of ``data_dir``, run by ``exe`` (the
    ``modelstream`` command) with ``env``; the gateway listens on ``host:port``."""

    def __init__(
        self, data_dir: Path, exe: str, env: Mapping[str, str], *,
        host: str = "127.0.0.1", port: int = 8080, parts: tuple[Part, ...] | None = None,
    ) -> None:  # fmt: skip
        chosen = parts if parts is not None else (*PARTS, gateway_part(host, port))
        self.processes = [PartProcess(part, data_dir, exe, env) for part in chosen]
        self.host, self.port = host, port

    def status(self) -> list[PartStatus]:
        return [process.status() for process in self.processes]

    def up(
        self, timeout: float = 90.0, on_ready: Callable[[PartStatus], None] | None = None
    ) -> list[PartStatus]:
        """Start every part that is not running and wait until all of them serve."""
        starting = [process for process in self.processes if not process.status().running]
        if any(process.part.name == "gateway" for process in starting):
            self._check_port_free()
        for process in starting:
            process.start()
        deadline = time.monotonic() + timeout
        waiting = list(starting)
        while waiting:
            for process in list(waiting):
                if self._ready(process):
                    waiting.remove(process)
                    if on_ready is not None:
                        on_ready(process.status())
            if waiting and time.monotonic() > deadline:
                names = ", ".join(process.part.name for process in waiting)
                raise StackError(
                    f"{names} did not say ready within {timeout:.0f}s; see "
                    + "; ".join(f"{p.log}:\n{p.log_tail()}" for p in waiting)
                )
            time.sleep(0.1)
        return self.status()

    @staticmethod
    def _ready(process: PartProcess) -> bool:
        try:
            return process.ready()
        except ChildProcessError as exc:
            raise StackError(f"{exc}\nFix the cause, then run `modelstream up` again.") from exc

    def _check_port_free(self) -> None:
        reach = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((reach, self.port)) == 0:
                raise StackError(
                    f"port {self.port} on {reach} is taken by another program: choose "
                    f"another one for the gateway, e.g. `modelstream up --port {self.port + 1}`"
                )

    def down(self, timeout: float = 30.0) -> list[tuple[str, bool]]:
        """Stop every part, the gateway first and the sink last (it lands what the others
        wrote). Returns ``(part, was running)``."""
        return [(p.part.name, p.stop(timeout)) for p in reversed(self.processes)]
