"""MLServer's own virtualenv, installed once under the cache directory.

MLServer pins its own fastapi, starlette, protobuf and aiokafka, which clash with ours,
so it never enters the project's environment: ``<cache_dir>/mlserver-venv`` gets
:data:`REQUIREMENTS` with pip, and a marker file naming them. A second run with the
marker in place installs nothing; a changed requirement list reinstalls.

Pins: mlserver 1.7.1 (Python 3.9-3.12); scikit-learn the same version as here, so the
``model.joblib`` written by this process unpickles into the same estimator; uvloop below
0.22, whose ``get_event_loop`` no longer creates a loop and crashes MLServer's parallel
inference workers at start.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

from services.bench._errors import MLServerUnavailableError

__all__ = ["MLSERVER_VERSION", "ensure_environment", "is_installed", "requirements", "venv_dir"]

MLSERVER_VERSION = "1.7.1"
MARKER = ".modelstream-installed"
INSTALL_TIMEOUT = 900.0


def requirements(sklearn_version: str | None = None) -> list[str]:
    """What goes into MLServer's virtualenv.

    >>> requirements("1.9.1")  # doctest: +NORMALIZE_WHITESPACE
    ['mlserver==1.7.1', 'mlserver-sklearn==1.7.1', 'scikit-learn==1.9.1', 'uvloop<0.22']
    """
    try:
        sklearn = sklearn_version or metadata.version("scikit-learn")
    except metadata.PackageNotFoundError as exc:
        raise MLServerUnavailableError("scikit-learn is not installed here: its version "
                                       "pins MLServer's") from exc  # fmt: skip
    return [f"mlserver=={MLSERVER_VERSION}", f"mlserver-sklearn=={MLSERVER_VERSION}",
            f"scikit-learn=={sklearn}", "uvloop<0.22"]  # fmt: skip


def venv_dir(cache_dir: Path) -> Path:
    return cache_dir / "mlserver-venv"


def is_installed(venv: Path, wanted: list[str]) -> bool:
    """True when ``venv`` was installed with exactly ``wanted`` and still has mlserver.

    >>> is_installed(Path("/nonexistent"), ["mlserver==1.7.1"])
    False
    """
    marker = venv / MARKER
    try:
        recorded = marker.read_text().split()
    except OSError:
        return False
    return recorded == wanted and (venv / "bin" / "mlserver").exists()


def ensure_environment(cache_dir: Path) -> Path:
    """The virtualenv with MLServer, installed first if needed; raises
    :class:`MLServerUnavailableError` with pip's last lines when that fails."""
    venv, wanted = venv_dir(cache_dir), requirements()
    if is_installed(venv, wanted):
        return venv
    (venv / MARKER).unlink(missing_ok=True)
    python = venv / "bin" / "python"
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(venv)], "create the virtualenv")
    _run([str(python), "-m", "pip", "install", "--quiet", *wanted], "pip install " +
         " ".join(wanted))  # fmt: skip
    (venv / MARKER).write_text("\n".join(wanted) + "\n")
    return venv


def _run(argv: list[str], what: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
                              check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MLServerUnavailableError(f"could not {what}: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise MLServerUnavailableError(f"could not {what} (exit {done.returncode}):\n{tail}")
