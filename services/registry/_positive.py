"""The positive class of a classifier: the label selection rates and fairness count.

Declared at registration or inferred from the classes the model records
(:func:`~services.registry._artifact.class_labels`: labels as text, booleans as
``true`` / ``false``):

* declared: one of the model's classes, compared as text (any text when the model does
  not expose its classes);
* inferred: the one class whose text is ``true``, ``1`` or ``yes`` in any letter case;
  no such class, or several, is an error asking for a declaration;
* a classifier that does not expose its classes (River models): ``"True"``, the label a
  River classifier learnt on booleans predicts;
* a regressor has none (``None``), and declaring one is an error.

>>> positive_label("churn", "classification", ("0", "1"))
'1'
>>> positive_label("churn", "classification", ("false", "true"))
'true'
>>> positive_label("churn", "classification", ("no", "yes"), declared="no")
'no'
>>> positive_label("churn", "classification", None), positive_label("price", "regression", None)
('True', None)
>>> positive_label("churn", "classification", ("cat", "dog"))  # doctest: +ELLIPSIS
Traceback (most recent call last):
services.registry._errors.InvalidModelError: cannot tell which class of churn is the positive ...
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from services.registry._errors import InvalidModelError

__all__ = ["UNDECLARED", "positive_label"]

UNDECLARED: Final = "True"  # a classifier with unknown classes, nothing declared
_READS_POSITIVE: Final = frozenset({"true", "1", "yes"})
_MAX_LISTED: Final = 20  # classes named in one message
_DECLARE: Final = "pass --positive-label (positive_label= in Python) with one of them"


def positive_label(
    name: str, task: str, classes: Sequence[str] | None, declared: str | None = None
) -> str | None:
    """The positive class of model ``name``, or :class:`InvalidModelError` saying what to
    declare (see the module docstring for the rules)."""
    if declared is not None and not declared.strip():
        raise InvalidModelError(f"the positive label of {name} must not be empty")
    if task != "classification":
        if declared is not None:
            raise InvalidModelError(
                f"{name} is a {task} model: it has no positive class; drop --positive-label "
                f"({declared!r})"
            )
        return None
    if classes is None:
        return UNDECLARED if declared is None else declared
    if declared is not None:
        if declared not in classes:
            raise InvalidModelError(
                f"{declared!r} is not a class of {name} (classes: {_listed(classes)}); {_DECLARE}"
            )
        return declared
    return _inferred(name, classes)


def _inferred(name: str, classes: Sequence[str]) -> str:
    """The one class that reads as true, 1 or yes."""
    found = [label for label in classes if label.lower() in _READS_POSITIVE]
    if len(found) == 1:
        return found[0]
    why = "none reads as true, 1 or yes" if not found else f"{' and '.join(found)} all do"
    raise InvalidModelError(
        f"cannot tell which class of {name} is the positive one (classes: {_listed(classes)}; "
        f"{why}); {_DECLARE}"
    )


def _listed(classes: Sequence[str]) -> str:
    """
    >>> _listed(["a", "b"]), _listed([str(n) for n in range(25)])[-17:]
    ('a, b', '18, 19 and 5 more')
    """
    shown = ", ".join(classes[:_MAX_LISTED])
    more = len(classes) - _MAX_LISTED
    return f"{shown} and {more} more" if more > 0 else shown
