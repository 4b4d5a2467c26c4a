"""Errors of the model lifecycle; every one says what to do next.

::

    RetrainError                 root of a retraining that registered nothing
    ├── TooFewRowsError          the window holds fewer labelled requests than asked for
    ├── TrainerError             the trainer cannot be imported or called, or it raised
    └── ModelContractError       the trained model is no predictor, or fails the champion's
                                 input contract on the holdout

Registry and warehouse failures keep their own types (``RegistryError``,
``WarehouseError``): they mean the same there as anywhere else.
"""

from __future__ import annotations

__all__ = ["ModelContractError", "RetrainError", "TooFewRowsError", "TrainerError"]


class RetrainError(Exception):
    """Root of every retraining failure: nothing was registered."""


class TooFewRowsError(RetrainError):
    """Fewer labelled requests in the window than the minimum."""


class TrainerError(RetrainError):
    """The trainer reference does not resolve to a callable, or the trainer raised."""


class ModelContractError(RetrainError):
    """The trainer returned something the champion's place cannot take: no predictor, a
    predictor that fails on the holdout, or one the registry refuses."""
