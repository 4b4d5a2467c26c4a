"""Errors of the reports; every one says what to do next.

::

    ReportError          root: no report was written
    └── WindowError      the asked window is empty or reversed (also a ValueError)

Warehouse failures keep their own type (``WarehouseError``): they mean the same here as
anywhere else.
"""

from __future__ import annotations

__all__ = ["ReportError", "WindowError"]


class ReportError(Exception):
    """Root of every report failure: nothing was written."""


class WindowError(ReportError, ValueError):
    """``--from`` is not before ``--to``."""
