"""The label contract: what a feedback label may be, and the class it names.

A label on ``<prefix>.<model>.feedback`` (``avro/feedback.avsc``) is null (the outcome
cannot be labelled), a string or a number. In JSON it may also be a boolean, read as the
string ``"True"`` / ``"False"`` -- the text the scorer logs for a boolean class, so a
River model answering ``True`` and a producer sending ``"label": true`` agree. Anything
else (an object, an array) is refused by the codec with ``wrong_type``, in every stage
alike, since every stage decodes feedback with ``codec_for("feedback")``.

A classification label is compared with a prediction by its **class text**,
:func:`label_class`. The rule depends on the text alone, because the warehouse keeps
predictions as text and SQL applies the same rule (``labelled_predictions``,
``schemas/clickhouse/009_label_classes.sql``):

- booleans, and ``true`` / ``false`` in any letter case, are ``"True"`` / ``"False"``;
- a whole number is its integer text: ``1``, ``1.0`` and ``"1.0"`` are all ``"1"``;
- any other number is its shortest text (``2.5``), any other string is itself.

Python and SQL agree on every boolean and string, on whole numbers of up to 15 digits and
on decimals from 0.0001 up; beyond that they write numbers differently (``1e-05``).

So ``true``, ``"true"`` and ``"True"`` label the class ``True``; ``1`` does not: it is the
class ``"1"``, which a model trained on 0/1 answers. Regression labels are numbers and
are compared as numbers; this rule is for classes.

Examples
--------
>>> [label_class(v) for v in (True, "true", "FALSE", 1, 1.0, "1.0", 2.5, "cat", None)]
['True', 'True', 'False', '1', '1', '1', '2.5', 'cat', None]
>>> coerce_feedback({"request_id": "r1", "label": True})
{'request_id': 'r1', 'label': 'True'}
"""

from __future__ import annotations

import re
from typing import Any, Final

__all__ = ["coerce_feedback", "label_class"]

_BOOLEAN_TEXT: Final = {"true": "True", "false": "False"}
_WHOLE: Final = re.compile(r"-?[0-9]+\.0", re.ASCII)


def label_class(value: object) -> str | None:
    """The class text a label or a classifier's output is compared by; None for null."""
    if value is None:
        return None
    if value is True or value is False:
        return "True" if value else "False"
    if isinstance(value, str):
        return _text_class(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    raise TypeError(
        f"expected a label: null, string, number or boolean, got {type(value).__name__}"
    )


def _text_class(text: str) -> str:
    if len(text) in (4, 5) and text.isascii():
        boolean = _BOOLEAN_TEXT.get(text.lower())
        if boolean is not None:
            return boolean
    if text.endswith(".0") and _WHOLE.fullmatch(text):
        return text[:-2]
    return text


def coerce_feedback(value: Any) -> Any:
    """A JSON feedback record with a boolean label read as its class text (a new dict;
    anything else unchanged, for the schema check to judge)."""
    if type(value) is dict:
        label = value.get("label")
        if label is True or label is False:
            return value | {"label": "True" if label else "False"}
    return value
