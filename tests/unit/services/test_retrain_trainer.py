"""The trainer reference: loading it, calling it, and which code it is (git or package)."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from services.lifecycle._errors import TrainerError
from services.lifecycle._trainer import code_version, load_trainer, run_trainer
from services.lifecycle.trainers import river_logistic

FRAME = pd.DataFrame({"x0": [1.0, -1.0], "label": ["True", "False"]})


@pytest.fixture
def modules(tmp_path: Path) -> Iterator[Path]:
    """A directory on sys.path for throwaway modules (forgotten afterwards)."""
    before = set(sys.modules)
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in set(sys.modules) - before:
        del sys.modules[name]


def write_module(directory: Path, name: str, source: str) -> Path:
    path = directory / f"{name}.py"
    path.write_text(source)
    return path


def test_a_reference_resolves_to_its_function() -> None:
    assert load_trainer("services.lifecycle.trainers:river_logistic") is river_logistic
    assert load_trainer(" services.lifecycle.trainers:river_logistic ") is river_logistic


def test_a_dotted_attribute_resolves_through_classes(modules: Path) -> None:
    write_module(modules, "ms_dotted", "class T:\n    @staticmethod\n    def fit(f, p):\n"
                 "        return 1\n")  # fmt: skip
    assert load_trainer("ms_dotted:T.fit")(FRAME, {}) == 1


@pytest.mark.parametrize("reference", ["river_logistic", "a.b:", ":fn", "a b:fn", "a:1fn", ""])
def test_a_malformed_reference_says_the_form(reference: str) -> None:
    with pytest.raises(TrainerError, match=r"is not package\.module:function"):
        load_trainer(reference)


def test_a_module_that_is_not_there_says_how_to_make_it_importable() -> None:
    with pytest.raises(TrainerError, match="cannot import no_such_pkg_ms.train "
                       r"\(ModuleNotFoundError.*is it installed, or on PYTHONPATH"):  # fmt: skip
        load_trainer("no_such_pkg_ms.train:fit")


def test_a_module_that_fails_on_import_is_a_trainer_error(modules: Path) -> None:
    write_module(modules, "ms_broken", "raise RuntimeError('no GPU here')\n")
    with pytest.raises(TrainerError, match=r"cannot import ms_broken \(RuntimeError: no GPU"):
        load_trainer("ms_broken:fit")


def test_a_missing_function_lists_what_the_module_has() -> None:
    message = r"has no river_logstic \(did you mean river_logistic\? it has: river_logistic\)"
    with pytest.raises(TrainerError, match=message):
        load_trainer("services.lifecycle.trainers:river_logstic")


def test_something_not_callable_is_refused(modules: Path) -> None:
    write_module(modules, "ms_value", "LEARNING_RATE = 0.1\n")
    with pytest.raises(TrainerError, match="is a float, not a function"):
        load_trainer("ms_value:LEARNING_RATE")


def test_a_trainer_that_raises_is_named_with_where_it_failed(modules: Path) -> None:
    write_module(modules, "ms_raises", "def fit(frame, params):\n"
                 "    return helper(frame)\n\ndef helper(frame):\n"
                 "    raise KeyError('income')\n")  # fmt: skip
    trainer = load_trainer("ms_raises:fit")
    with pytest.raises(TrainerError) as caught:
        run_trainer(trainer, "ms_raises:fit", FRAME, {}, seed=0)
    message = str(caught.value)
    assert message.startswith("trainer ms_raises:fit raised KeyError: 'income' (")
    assert "ms_raises.py:5 in helper <- ms_raises.py:2 in fit" in message
    assert "nothing was registered" in message
    assert isinstance(caught.value.__cause__, KeyError)


def test_the_trainer_gets_a_copy_and_seeded_global_generators() -> None:
    seen: list[Any] = []

    def draws(frame: pd.DataFrame, params: dict[str, str]) -> tuple[float, float]:
        frame["label"] = "changed"
        params["lr"] = "changed"
        seen.append(params)
        return random.random(), float(np.random.random())  # as trainers do

    params = {"lr": "0.1"}
    first = run_trainer(draws, "t:draws", FRAME, params, seed=7)
    second = run_trainer(draws, "t:draws", FRAME, params, seed=7)
    other = run_trainer(draws, "t:draws", FRAME, params, seed=8)
    assert first == second != other
    assert FRAME["label"].tolist() == ["True", "False"] and params == {"lr": "0.1"}


def git(directory: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(directory), *args], capture_output=True,
                          text=True, check=True)  # fmt: skip
    return done.stdout.strip()


@pytest.fixture
def repository(modules: Path) -> Path:
    git(modules, "init", "-q")
    git(modules, "config", "user.email", "t@example.com")
    git(modules, "config", "user.name", "t")
    return modules


def test_code_version_is_the_commit_of_the_trainers_work_tree(repository: Path) -> None:
    write_module(repository, "ms_git_fit", "def fit(frame, params):\n    return None\n")
    git(repository, "add", "ms_git_fit.py")
    git(repository, "commit", "-q", "-m", "trainer")
    sha = git(repository, "rev-parse", "HEAD")
    assert code_version(load_trainer("ms_git_fit:fit")) == sha


def test_uncommitted_changes_make_it_dirty(repository: Path) -> None:
    path = write_module(repository, "ms_dirty_fit", "def fit(frame, params):\n    return 1\n")
    git(repository, "add", path.name)
    git(repository, "commit", "-q", "-m", "trainer")
    sha = git(repository, "rev-parse", "HEAD")
    path.write_text("def fit(frame, params):\n    return 2\n")  # edited after the commit
    assert code_version(load_trainer("ms_dirty_fit:fit")) == f"{sha}+dirty"


def test_an_untracked_trainer_in_a_work_tree_is_dirty(repository: Path) -> None:
    write_module(repository, "ms_readme", "")
    git(repository, "add", "ms_readme.py")
    git(repository, "commit", "-q", "-m", "first")
    write_module(repository, "ms_new_fit", "def fit(frame, params):\n    return 1\n")
    assert code_version(load_trainer("ms_new_fit:fit")).endswith("+dirty")


def test_a_git_ignored_module_is_its_distributions_version(repository: Path) -> None:
    (repository / ".gitignore").write_text("venv/\n")
    git(repository, "add", ".gitignore")
    git(repository, "commit", "-q", "-m", "ignore")
    package = repository / "venv" / "ms_vendored"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("def fit(frame, params):\n    return 1\n")
    sys.path.insert(0, str(repository / "venv"))
    try:
        assert code_version(load_trainer("ms_vendored:fit")) == "unknown"
    finally:
        sys.path.remove(str(repository / "venv"))


def test_outside_git_an_installed_package_gives_its_version() -> None:
    import river

    version = code_version(load_trainer("river.compose:Select"))
    assert version == f"river=={river.__version__}"


def test_outside_git_and_any_distribution_it_is_unknown(modules: Path) -> None:
    write_module(modules, "ms_loose_fit", "def fit(frame, params):\n    return 1\n")
    assert code_version(load_trainer("ms_loose_fit:fit")) == "unknown"
