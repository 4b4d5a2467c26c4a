"""The user's trainer: a plain function named ``package.module:function``.

Contract: ``trainer(frame: pandas.DataFrame, params: dict[str, str]) -> model``. ``frame``
holds one column per input field of the champion (the schema's types) and ``label``, in
time order; ``params`` are the ``--param k=v`` strings as given; the model is a River or
scikit-learn predictor, scored later exactly as the champion is.

:func:`load_trainer` resolves the reference with importlib, :func:`run_trainer` calls it
and turns whatever it raises into a :class:`TrainerError` that names it and says where
it failed, and :func:`code_version` says which code that was: the git commit of the
work tree holding the trainer's module (``+dirty`` with uncommitted changes there), else
the version of the distribution that installed its top-level package (also for a
module git ignores, such as a virtualenv's inside the work tree), else ``unknown``.

Importing a trainer runs its module's code, like loading an artifact: name only trainers
you trust.

Examples
--------
>>> load_trainer("services.lifecycle.trainers:river_logistic").__name__
'river_logistic'
>>> load_trainer("services.lifecycle.trainers")
Traceback (most recent call last):
services.lifecycle._errors.TrainerError: trainer 'services.lifecycle.trainers' is not package.module:function (e.g. services.lifecycle.trainers:river_logistic)
"""  # noqa: E501

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import random
import re
import subprocess
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from services.lifecycle._errors import TrainerError
from services.registry import closest

__all__ = ["Trainer", "code_version", "load_trainer", "run_trainer"]

Trainer = Callable[[pd.DataFrame, dict[str, str]], Any]
_REFERENCE: Final = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_EXAMPLE: Final = "services.lifecycle.trainers:river_logistic"
_GIT_TIMEOUT_S: Final = 10.0
_FRAMES_SHOWN: Final = 3


def load_trainer(reference: str) -> Trainer:
    """The callable ``reference`` names (``package.module:function``; the function part
    may be dotted, ``module:Class.method``)."""
    if not _REFERENCE.match(reference.strip()):
        raise TrainerError(
            f"trainer {reference!r} is not package.module:function (e.g. {_EXAMPLE})"
        )
    module_name, _, attribute = reference.strip().partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # importing runs the module: anything can fail
        raise TrainerError(
            f"trainer {reference}: cannot import {module_name} ({type(exc).__name__}: {exc}); "
            "is it installed, or on PYTHONPATH?"
        ) from exc
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise TrainerError(f"trainer {reference}: {module_name} has no {attribute}"
                               f"{_known(target, part)}")  # fmt: skip
        target = getattr(target, part)
    if not callable(target):
        raise TrainerError(
            f"trainer {reference} is a {type(target).__name__}, not a function: name a "
            "function (frame, params) -> model"
        )
    return target  # type: ignore[no-any-return]  # checked callable; its signature is the contract


def _known(owner: object, wanted: str) -> str:
    """`` (did you mean fit? it has: a, b)``: the functions ``owner`` defines itself (or
    its ``__all__``), not the names it imports."""
    names = getattr(owner, "__all__", None) or [
        name for name, value in vars(owner).items()
        if not name.startswith("_") and callable(value)
        and getattr(value, "__module__", None) == getattr(owner, "__name__", None)
    ]  # fmt: skip
    if not names:
        return " (it defines no public functions)"
    guess = closest(wanted, names)
    hint = f"did you mean {guess}? " if guess else ""
    return f" ({hint}it has: {', '.join(sorted(names)[:15])})"


def run_trainer(
    trainer: Trainer, reference: str, frame: pd.DataFrame, params: Mapping[str, str], seed: int
) -> Any:
    """``trainer(frame, params)``, with Python's and NumPy's global generators seeded
    with ``seed`` first (a trainer that draws from them trains the same model twice)."""
    random.seed(seed)
    np.random.seed(seed)  # the legacy global generator trainers may use
    try:
        return trainer(frame.copy(), dict(params))
    except Exception as exc:  # the user's code: report whatever it raises
        raise TrainerError(
            f"trainer {reference} raised {type(exc).__name__}: {exc} ({_where(exc)}); "
            "nothing was registered: fix the trainer and run retrain again"
        ) from exc


def _where(exc: BaseException) -> str:
    """The innermost frames of ``exc``'s traceback, ``file:line in function`` each."""
    frames = traceback.extract_tb(exc.__traceback__)[-_FRAMES_SHOWN:]
    return " <- ".join(f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in reversed(frames))


def code_version(trainer: object) -> str:
    """Which code ``trainer`` is (see the module docstring)."""
    module = inspect.getmodule(trainer)
    source = _source_file(module)
    if source is not None:
        sha = _git_version(source)
        if sha is not None:
            return sha
    top = (getattr(module, "__name__", "") or "").partition(".")[0]
    return _distribution_version(top) or "unknown"


def _source_file(module: object) -> Path | None:
    try:
        found = inspect.getsourcefile(module)  # type: ignore[arg-type]  # None raises TypeError
    except TypeError:  # built-in, or no module at all
        return None
    return Path(found).resolve() if found else None


def _git_version(source: Path) -> str | None:
    """``<sha>`` or ``<sha>+dirty`` when ``source`` is in a git work tree and not ignored
    there (a package installed in a virtualenv inside the tree is the distribution's)."""
    directory = source.parent
    head = _git(directory, "rev-parse", "HEAD")
    if head is None or _git(directory, "check-ignore", "-q", str(source)) is not None:
        return None
    status = _git(directory, "status", "--porcelain")
    return f"{head}+dirty" if status else head


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True, text=True, timeout=_GIT_TIMEOUT_S, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):  # no git here, or it hung
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _distribution_version(top_level: str) -> str | None:
    """The version of the distribution that installed package ``top_level``."""
    if not top_level:
        return None
    names = importlib.metadata.packages_distributions().get(top_level, [top_level])
    for name in names:
        try:
            return f"{name}=={importlib.metadata.version(name)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return None
