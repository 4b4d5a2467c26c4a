"""A model's promotion policy: when the lifecycle promotes, retires or retrains.

Stored in the registry (``<prefix>._routing``, key ``<name>/policy``, a JSON object), so
every lifecycle process and every ``models show`` reads the same one; a model without a
record has :data:`DEFAULT`, with the loop off.

>>> p = PromotionPolicy.from_json(PromotionPolicy(min_labels=500).to_json())
>>> p.min_labels, p.alpha, p.max_shadow_s
(500, 0.01, 86400.0)
>>> parse_duration("90m"), parse_duration("1d"), parse_duration("30s")
(5400.0, 86400.0, 30.0)
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any, Final

import orjson

__all__ = [
    "DEFAULT",
    "PolicyError",
    "PromotionPolicy",
    "format_duration",
    "loop_switched",
    "parse_duration",
]

_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


class PolicyError(ValueError):
    """A policy value out of its range, or a duration that does not parse."""


@dataclass(frozen=True)
class PromotionPolicy:
    """The gate and the loop of one model.

    Gate: a challenger is promoted when, on at least ``min_labels`` labelled requests
    both versions scored, the paired test says it is better at ``alpha``, none of its
    fairness gaps is wider than the champion's by more than ``max_fairness_widening``,
    no drift or anomaly alert is open on it, and its latency p99 is at most
    ``1 + max_p99_increase`` times the champion's (or within ``p99_slack_ms`` of it: a
    relative bound alone blocks on microseconds of noise); it is retired when the test says it
    is worse at ``alpha`` or it has shadowed for ``max_shadow_s``. ``pinned``: the
    champion stays whatever the evidence (decisions are still recorded).

    Loop: with ``auto_retrain``, a drift or concept-drift alert on the champion (or
    ``retrain_every_s``, when set) starts a retraining with ``trainer`` on the last
    ``retrain_window_s`` of labelled requests, at most once per ``cooldown_s``. Only
    alerts raised after the loop was switched on count (``loop_since``, epoch seconds,
    set by :func:`loop_switched`): switching it on does not act on old alerts.
    """

    min_labels: int = 2000
    alpha: float = 0.01
    max_fairness_widening: float = 0.02
    max_p99_increase: float = 0.2
    p99_slack_ms: float = 1.0
    max_shadow_s: float = 86400.0
    pinned: bool = False
    auto_retrain: bool = False
    trainer: str | None = None
    retrain_window_s: float = 7 * 86400.0
    retrain_min_rows: int = 500
    holdout: float = 0.2
    cooldown_s: float = 6 * 3600.0
    retrain_every_s: float | None = None
    loop_since: float | None = None

    def __post_init__(self) -> None:
        _check(self.min_labels >= 1, "min-labels must be at least 1")
        _check(0 < self.alpha < 1, "alpha must be between 0 and 1")
        _check(0 <= self.max_fairness_widening <= 1, "max-fairness-widening must be in 0..1")
        _check(self.max_p99_increase >= 0, "max-p99-increase must be 0 or more")
        _check(self.p99_slack_ms >= 0, "p99-slack-ms must be 0 or more")
        for name in ("max_shadow_s", "retrain_window_s", "cooldown_s"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value > 0, f"{_flag(name)} must be a positive duration")
        _check(self.retrain_every_s is None or self.retrain_every_s > 0,
               "retrain-every must be a positive duration")  # fmt: skip
        _check(self.retrain_min_rows >= 2, "retrain-min-rows must be at least 2")
        _check(0 < self.holdout < 1, "holdout must be between 0 and 1")
        _check(not self.auto_retrain or bool(self.trainer),
               "the loop needs a trainer: --trainer package.module:function")  # fmt: skip

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, data: bytes) -> PromotionPolicy:
        """The policy in ``data``; fields it does not hold keep their defaults, fields
        this code does not know (written by a newer one) are ignored."""
        raw = orjson.loads(data)
        if not isinstance(raw, dict):
            raise PolicyError("a policy record must be a JSON object")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def changed(self, **changes: Any) -> PromotionPolicy:
        """A copy with ``changes`` (None values leave a field as it is)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def describe(self) -> dict[str, str]:
        """Field → readable value, for ``models show`` and ``models policy``."""
        out = {}
        for name, value in asdict(self).items():
            if name == "loop_since":
                out[_flag(name)] = "-" if value is None else _when(value)
            elif name.endswith("_s"):
                out[_flag(name)] = "-" if value is None else format_duration(value)
            else:
                out[_flag(name)] = "-" if value is None else str(value)
        return out


def loop_switched(before: PromotionPolicy, after: PromotionPolicy, now: float) -> PromotionPolicy:
    """``after`` with ``loop_since`` set to ``now`` when it switches the loop on (kept
    while it stays on, cleared when it goes off).

    >>> off, on = PromotionPolicy(), PromotionPolicy(auto_retrain=True, trainer="m:f")
    >>> loop_switched(off, on, 100.0).loop_since, loop_switched(off, off, 100.0).loop_since
    (100.0, None)
    >>> loop_switched(loop_switched(off, on, 100.0), on, 200.0).loop_since
    100.0
    """
    if not after.auto_retrain:
        return replace(after, loop_since=None)
    if before.auto_retrain and before.loop_since is not None:
        return replace(after, loop_since=before.loop_since)
    return replace(after, loop_since=now)


def parse_duration(text: str) -> float:
    """Seconds in ``30s``, ``15m``, ``6h``, ``7d`` or ``2w``."""
    match = _DURATION.match(text)
    if match is None:
        raise PolicyError(f"{text!r} is not a duration: write a number and s, m, h, d or w (6h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def format_duration(seconds: float) -> str:
    """The largest whole unit: ``format_duration(86400) == '1d'``; else seconds.

    >>> format_duration(86400), format_duration(5400), format_duration(7.5)
    ('1d', '90m', '7.5s')
    """
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size and float(seconds / size).is_integer():
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _flag(name: str) -> str:
    return name.removesuffix("_s").replace("_", "-")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise PolicyError(message)


DEFAULT: Final = PromotionPolicy()
