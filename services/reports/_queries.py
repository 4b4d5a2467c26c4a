"""SQL -> frames: every number in the report is aggregated by ClickHouse, here.

Each function takes a :class:`~services.sink.reader.Reader`, the model and the window
``[start, end)`` and returns a small DataFrame (one row per bucket, window, group or
event); the charts only draw them. Placeholders are bound by the engine
(``{name:Type}``), so the same SQL runs on a server, on chDB, and through the sink.
The statements follow ``docs/queries.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

import pandas as pd

from services.reports._window import Window, utc
from services.sink.reader import Reader

__all__ = [
    "Serving",
    "alerts",
    "latest_prediction",
    "model_events",
    "open_alerts",
    "params",
    "serving",
    "traffic",
    "utc_columns",
]

_WINDOW: Final = (
    "model = {model:String} AND ts >= {start:DateTime64(3, 'UTC')} "
    "AND ts < {end:DateTime64(3, 'UTC')}"
)
_BUCKET: Final = "toStartOfInterval(ts, toIntervalSecond({step:UInt32})) AS bucket"

ALERT_COLUMNS: Final = ("ts", "alert_id", "kind", "name", "feature", "group", "severity", "status",
                        "value", "threshold", "message", "model_version")  # fmt: skip
OPEN_ALERT_COLUMNS: Final = ("alert_id", "last_kind", "last_feature", "last_message",
                             "last_status", "last_ts")  # fmt: skip
EVENT_COLUMNS: Final = ("ts", "version", "action", "actor", "reason")

TRAFFIC_SQL: Final = f"""
SELECT
    {_BUCKET},
    count() AS requests,
    count() / {{step:UInt32}} AS rps,
    quantile(0.5)(latency_ms) AS p50_ms,
    quantile(0.99)(latency_ms) AS p99_ms,
    countIf(champion_error != '') AS errors,
    countIf(served_by = 'backup') AS backups
FROM predictions
WHERE {_WINDOW}
GROUP BY bucket
ORDER BY bucket
"""

DLQ_SQL: Final = f"""
SELECT {_BUCKET}, count() AS dlq
FROM dlq
WHERE {_WINDOW}
GROUP BY bucket
ORDER BY bucket
"""

ALERTS_SQL: Final = f"""
SELECT ts, alert_id, kind, name, feature, `group`, severity, status, value, threshold,
       message, model_version
FROM alerts
WHERE {_WINDOW} AND kind != 'monitor'
ORDER BY ts
"""

# Alerts still firing at the window's end: the latest state change of each id.
OPEN_ALERTS_SQL: Final = """
SELECT alert_id, argMax(kind, ts) AS last_kind, argMax(feature, ts) AS last_feature,
       argMax(message, ts) AS last_message, argMax(status, ts) AS last_status,
       max(ts) AS last_ts
FROM alerts
WHERE model = {model:String} AND ts < {end:DateTime64(3, 'UTC')}
  AND kind IN ('drift', 'concept_drift')
GROUP BY alert_id
HAVING last_status = 'firing'
ORDER BY last_ts
"""

EVENTS_SQL: Final = f"""
SELECT ts, version, action, actor, reason
FROM model_events
WHERE {_WINDOW}
ORDER BY ts
"""

VERSIONS_SQL: Final = f"""
SELECT argMax(champion_version, ts) AS champion,
       argMaxIf(challenger_version, ts, challenger_version IS NOT NULL) AS challenger,
       countIf(length(sensitive) > 0) AS with_sensitive,
       count() AS requests, min(ts) AS first, max(ts) AS last
FROM predictions
WHERE {_WINDOW}
"""


def params(model: str, window: Window, **more: Any) -> dict[str, Any]:
    """The placeholders every statement here binds."""
    return {"model": model, "start": window.start, "end": window.end, **more}


def latest_prediction(reader: Reader, model: str) -> Any:
    """The time of the model's latest prediction (None when it has none)."""
    rows = reader.query(
        "SELECT count(), max(ts) FROM predictions WHERE model = {model:String}",
        {"model": model}, read_only=True,
    ).rows  # fmt: skip
    return rows[0][1] if rows and rows[0][0] else None


def traffic(reader: Reader, model: str, window: Window, step: int) -> pd.DataFrame:
    """Per bucket: requests, requests/s, p50 and p99 latency (ms), errors, backups, DLQ
    messages, and the error, backup and DLQ rates (DLQ over everything received)."""
    frame = utc_columns(reader.query_df(TRAFFIC_SQL, params(model, window, step=step)))
    lost = utc_columns(reader.query_df(DLQ_SQL, params(model, window, step=step)))
    if frame.empty and lost.empty:
        return frame
    if frame.empty:  # only dead letters: nothing was scored
        merged = lost.assign(requests=0.0, rps=0.0, p50_ms=math.nan, p99_ms=math.nan,
                             errors=0.0, backups=0.0)  # fmt: skip
    elif lost.empty:
        merged = frame.assign(dlq=0.0)
    else:
        merged = frame.merge(lost, on="bucket", how="outer")
    counts = ["requests", "rps", "errors", "backups", "dlq"]
    merged[counts] = merged[counts].astype(float).fillna(0.0)
    served = merged["requests"].where(merged["requests"] > 0)
    merged["error_rate"] = (merged["errors"] / served).fillna(0.0)
    merged["backup_rate"] = (merged["backups"] / served).fillna(0.0)
    merged["dlq_rate"] = merged["dlq"] / (merged["requests"] + merged["dlq"])
    return merged.sort_values("bucket").reset_index(drop=True)


def alerts(reader: Reader, model: str, window: Window) -> pd.DataFrame:
    """Every alert state change in the window (monitor self-alerts left out)."""
    return utc_columns(_shaped(reader.query_df(ALERTS_SQL, params(model, window)), ALERT_COLUMNS))


def open_alerts(reader: Reader, model: str, window: Window) -> pd.DataFrame:
    """Drift and concept drift alerts whose latest state before the end is firing:
    alert_id, kind, feature, message, status, ts."""
    frame = _shaped(
        reader.query_df(OPEN_ALERTS_SQL, {"model": model, "end": window.end}), OPEN_ALERT_COLUMNS
    )
    frame.columns = [str(name).removeprefix("last_") for name in frame.columns]
    return utc_columns(frame)


def model_events(reader: Reader, model: str, window: Window) -> pd.DataFrame:
    """Registry events (register, promote, retire, rollback, wait, ...) in the window."""
    return utc_columns(_shaped(reader.query_df(EVENTS_SQL, params(model, window)), EVENT_COLUMNS))


@dataclass(frozen=True, slots=True)
class Serving:
    """Who served in the window: the latest predictions' champion and challenger ('' when
    none), how many predictions carry sensitive attributes, and the span that holds
    predictions (the window itself when none does)."""

    champion: str
    challenger: str
    with_sensitive: int
    active: Window


def serving(reader: Reader, model: str, window: Window) -> Serving:
    """The window's :class:`Serving`."""
    rows = reader.query(VERSIONS_SQL, params(model, window), read_only=True).rows
    if not rows or not rows[0][3]:
        return Serving("", "", 0, window)
    champion, challenger, sensitive, _, first, last = rows[0]
    active = Window(utc(first), utc(last) + timedelta(milliseconds=1))
    return Serving(str(champion or ""), str(challenger or ""), int(sensitive or 0), active)


def utc_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Time columns as UTC timestamps, whichever reader produced the frame."""
    for name in ("bucket", "ts", "window_end", "window_start"):
        if name in frame and len(frame):
            frame[name] = pd.to_datetime(frame[name], utc=True)
    return frame


def _shaped(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """An empty answer with its columns (a reader may return none for no rows)."""
    return frame if len(frame.columns) else pd.DataFrame(columns=list(columns))
