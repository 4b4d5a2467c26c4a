"""Monitoring reports: what the warehouse knows about a model, drawn.

:func:`render_report` reads a model's window from ClickHouse (through any
:class:`~services.sink.reader.Reader`: a :class:`~services.warehouse.Warehouse` or the
running sink) and returns one self-contained HTML document: plotly.js embedded, nothing
fetched, so the file opens offline. At the top, what needs attention (open drift alerts,
DLQ, backup and error rates, fairness gaps past their limits, a challenger the paired
test separates from the champion); then traffic, data drift, performance (champion vs
challenger with confidence intervals) and fairness, with the window's alerts and model
events marked on every time axis. A section with nothing to draw says why.

``modelstream report NAME --out report.html`` (:mod:`services.reports.cli`) writes one;
the gateway serves the same document live.
"""

from __future__ import annotations

from services.reports._errors import ReportError, WindowError
from services.reports._report import Report, render_report

__all__ = ["Report", "ReportError", "WindowError", "render_report"]
