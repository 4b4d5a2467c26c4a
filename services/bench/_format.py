"""How the bench's tables write numbers: a dash for a missing one, thousands separated
for rates, two decimals otherwise."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["fmt", "ms"]


def fmt(value: float | None, unit: str) -> str:
    """A number for the table.

    >>> fmt(0.4312, "ratio"), fmt(15234.2, "events/s"), fmt(None, "ms"), fmt(3.14159, "ms")
    ('0.43', '15,234', '—', '3.14')
    >>> fmt(0.99875, "share")
    '99.88 %'
    """
    if value is None:
        return "—"
    if unit == "events/s":
        return f"{value:,.0f}"
    if unit == "share":
        return f"{100 * value:.2f} %"
    return f"{value:.2f}"


def ms(values: Mapping[str, float] | None, keys: tuple[str, ...]) -> str:
    """Percentiles of ``values`` in ms, or dashes.

    >>> ms({"p50": 7.84, "p99": 18.8}, ("p50", "p99")), ms(None, ("p50", "p99"))
    ('7.84 / 18.80 ms', '— / — ms')
    """
    return " / ".join(fmt((values or {}).get(k), "ms") for k in keys) + " ms"
