"""Each package's __init__ is a front door: a docstring, an explicit __all__ that resolves,
and no Kafka client pulled in by the estimators."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import streams.monitoring

PACKAGES = ["drift", "change", "performance", "fairness", "anomaly", "ops"]
ROOT = Path(streams.monitoring.__file__).parent


@pytest.mark.parametrize("name", ["", *PACKAGES])
def test_front_door(name: str) -> None:
    module = importlib.import_module("streams.monitoring" + (f".{name}" if name else ""))
    assert module.__doc__ and len(module.__doc__.splitlines()) > 5
    assert module.__all__ and len(set(module.__all__)) == len(module.__all__)
    for attr in module.__all__:
        assert getattr(module, attr) is not None


def test_subpackages_are_listed_and_load_lazily() -> None:
    assert set(PACKAGES) <= set(streams.monitoring.__all__)
    code = (
        "import sys, streams.monitoring.results; "
        "print(any(m.split('.')[0] in ('river', 'scipy') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_estimators_import_no_kafka_client() -> None:
    imports = "; ".join(f"import streams.monitoring.{name}" for name in PACKAGES)
    code = (
        f"import sys; {imports}; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'faust', 'confluent_kafka'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "path",
    sorted(p for name in PACKAGES for p in (ROOT / name).glob("*.py")),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_modules_stay_small(path: Path) -> None:
    assert len(path.read_text().splitlines()) < 400
