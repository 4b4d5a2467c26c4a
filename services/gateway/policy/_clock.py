"""The clock the policy measures time with (injectable, so tests need not sleep)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

__all__ = ["Clock"]

Clock: TypeAlias = Callable[[], float]
"""Seconds from an arbitrary origin that never goes backwards (``time.monotonic``)."""
