"""Limits: what one client may send, how often and how much."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from services.gateway.policy._errors import BodyTooLargeError, InvalidLimitsError

__all__ = ["Limits", "check_body_size"]


@dataclass(frozen=True)
class Limits:
    """A client's limits; every number must be positive (``quota=None``: unlimited).

    ``rate_per_s`` and ``burst`` shape the token bucket (sustained rate, largest spike),
    ``quota`` counts requests per ``quota_window_s`` (a day by default), ``max_body_bytes``
    caps one request body and ``max_batch`` the rows of one batch request.

    >>> Limits(rate_per_s=5, quota=1_000).to_dict()["quota"]
    1000
    >>> Limits.from_dict({"burst": 10}) == Limits(burst=10)
    True
    >>> Limits(burst=0)
    Traceback (most recent call last):
    ...
    services.gateway.policy._errors.InvalidLimitsError: burst must be an integer >= 1, got 0
    """

    rate_per_s: float = 50.0
    burst: int = 100
    quota: int | None = None
    quota_window_s: float = 86_400.0
    max_body_bytes: int = 1_048_576
    max_batch: int = 1_000

    def __post_init__(self) -> None:
        positive_number("rate_per_s", self.rate_per_s)
        positive_number("quota_window_s", self.quota_window_s)
        for name in ("burst", "max_body_bytes", "max_batch"):
            positive_int(name, getattr(self, name))
        if self.quota is not None:
            positive_int("quota", self.quota)

    @property
    def largest_cost(self) -> int:
        """The largest cost one request can ever be admitted with: a batch takes a token
        and a unit of quota per record, all at once, so it cannot exceed the burst or the
        whole quota (:class:`~services.gateway.policy.PolicyManager` answers
        ``too_large``).

        >>> Limits(burst=100, quota=50).largest_cost, Limits(burst=100).largest_cost
        (50, 100)
        """
        return self.burst if self.quota is None else min(self.burst, self.quota)

    @property
    def largest_batch(self) -> int:
        """The most records one batch request can carry: ``max_batch``, or
        :attr:`largest_cost` when that is smaller.

        >>> Limits(burst=100, max_batch=1_000).largest_batch
        100
        """
        return min(self.max_batch, self.largest_cost)

    @property
    def batch_bound(self) -> Literal["max_batch", "burst", "quota"]:
        """The limit that sets :attr:`largest_batch` (``max_batch`` on a tie).

        >>> Limits(burst=100).batch_bound, Limits(quota=10).batch_bound
        ('burst', 'quota')
        >>> Limits(max_batch=10).batch_bound
        'max_batch'
        """
        if self.largest_batch == self.max_batch:
            return "max_batch"
        return "burst" if self.largest_batch == self.burst else "quota"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, the form stored on the clients topic."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Limits:
        """Missing keys take their defaults; unknown keys are ignored, so records written
        by a newer gateway with more limits stay readable during a rolling upgrade."""
        if not isinstance(data, Mapping):
            raise InvalidLimitsError(f"limits must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


def positive_number(name: str, value: object) -> None:
    # bool is an int to Python, never a sensible limit
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidLimitsError(f"{name} must be a finite number > 0, got {value!r}")


def positive_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidLimitsError(f"{name} must be an integer >= 1, got {value!r}")


def check_cost(cost: int) -> None:
    """A request costs a whole number of units (1 per request, or the rows of a batch)."""
    if isinstance(cost, bool) or not isinstance(cost, int) or cost < 0:
        raise ValueError(f"cost must be an integer >= 0, got {cost!r}")


def check_body_size(declared: int | None, limit: int) -> None:
    """Refuse a body whose declared size (``Content-Length``) exceeds ``limit``.

    ``None`` (no length declared, a chunked body) passes: the reader must then count
    the bytes as they stream and stop at ``limit`` itself.

    >>> check_body_size(None, 10), check_body_size(10, 10)
    (None, None)
    >>> check_body_size(11, 10)
    Traceback (most recent call last):
    ...
    services.gateway.policy._errors.BodyTooLargeError: request body of 11 bytes exceeds this \
client's limit of 10 bytes; send smaller requests or split the batch
    """
    if declared is not None and declared > limit:
        raise BodyTooLargeError(
            f"request body of {declared} bytes exceeds this client's limit of {limit} bytes; "
            "send smaller requests or split the batch",
            size=declared,
            limit=limit,
        )
