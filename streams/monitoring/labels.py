"""How class labels are compared across the monitors: by their class text.

Labels reach the monitor from the feedback contract (``string`` or ``double``; a JSON
boolean arrives as ``"True"`` / ``"False"``) and model outputs from the prediction log,
and class probabilities are keyed by strings, so every class label is compared by the
contract's class text (:func:`schemas.labels.label_class`), the same rule the warehouse's
``labelled_predictions`` view applies in SQL: booleans and ``true`` / ``false`` in any
case as ``"True"`` / ``"False"``, whole numbers without ``.0`` (``1.0`` is ``"1"``),
anything else as its text.

Examples
--------
>>> label_key(True), label_key("true"), label_key(1.0), label_key("1.0"), label_key("cat")
('True', 'True', '1', '1', 'cat')
"""

from __future__ import annotations

from schemas.labels import label_class

__all__ = ["label_key"]


def label_key(value: object) -> str:
    """The class text a label or a classifier's output is compared by (not null)."""
    key = label_class(value)
    if key is None:
        raise TypeError("expected a class label or output, got null")
    return key
