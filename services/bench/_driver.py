"""A load generator's own process, as :mod:`services.bench._http_driver` and
:mod:`services.bench._grpc_driver` run: started as a script (``python -I <path>``), so it
imports nothing of modelstream and shares the machine with the servers under test as
lightly as it can.

Protocol: the spec as JSON on stdin; on stdout ``tick <requests done>`` once a second,
then ``result <json>``. A driver that exits without a result is a :class:`LoadError`
with its last stderr lines.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.bench._errors import LoadError

__all__ = ["run_driver"]


def run_driver(
    script: str, spec: bytes, what: str, on_tick: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Run the driver ``script`` on ``spec``; ``on_tick(requests_so_far)`` once a second;
    returns its decoded result."""
    argv = [sys.executable, "-I", str(Path(script).resolve())]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(_reap, proc)
        proc.stdin.write(spec)
        proc.stdin.close()
        for line in proc.stdout:
            kind, _, rest = line.decode().strip().partition(" ")
            if kind == "tick" and on_tick is not None:
                on_tick(int(rest))
            elif kind == "result":
                result: dict[str, Any] = json.loads(rest)
                return result
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    raise LoadError(f"the {what} load generator exited with {proc.returncode} without a "
                    f"result; stderr:\n{stderr[-2000:]}")  # fmt: skip


def _reap(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
