"""The faust baseline's variants: the agent as a faust user tuning for throughput might write it.

Two choices, each measured, so the bench reports faust at its best and not at its
tutorial shape:

- the stream: ``event``, one request per iteration of ``stream.events()`` (the shape of
  faust's own examples); or ``take``, ``stream.take_events(max_batch, within)``, batches of
  up to the scorer's ``max_batch`` requests, handed over after at most :data:`TAKE_WITHIN`
  seconds when fewer are waiting;
- the event loop: asyncio's default, or ``uvloop`` (``mode.loop.use("uvloop")``, what
  ``faust -L uvloop worker`` / ``FAUST_LOOP=uvloop`` select).

>>> [v.name for v in VARIANTS]
['event', 'event-uvloop', 'take', 'take-uvloop']
>>> FaustVariant.parse("take-uvloop")
FaustVariant(take=True, uvloop=True)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TAKE_WITHIN", "VARIANTS", "FaustVariant"]

TAKE_WITHIN = 0.01  # seconds a partial take() batch may wait for more requests


@dataclass(frozen=True)
class FaustVariant:
    """How the agent reads its stream (``take``) and which event loop runs it."""

    take: bool
    uvloop: bool

    @property
    def name(self) -> str:
        return ("take" if self.take else "event") + ("-uvloop" if self.uvloop else "")

    @classmethod
    def parse(cls, name: str) -> FaustVariant:
        """The variant called ``name`` (one of :data:`VARIANTS`)."""
        for variant in VARIANTS:
            if variant.name == name:
                return variant
        raise ValueError(f"expected a faust variant in {[v.name for v in VARIANTS]}, got {name!r}")


VARIANTS = tuple(FaustVariant(take, uvloop) for take in (False, True) for uvloop in (False, True))
