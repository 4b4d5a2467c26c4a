"""How class labels are compared across the monitors: as strings.

Labels reach the monitor from Avro unions (``string`` or ``double``) and model outputs,
and class probabilities are keyed by strings, so every class label is compared by its
string form: booleans as ``"true"`` / ``"false"`` (the profile's convention), integral
floats without ``.0`` (``1.0`` is ``"1"``), anything else as ``str(value)``.

Examples
--------
>>> label_key(True), label_key(1.0), label_key(1), label_key(2.5), label_key("cat")
('true', '1', '1', '2.5', 'cat')
"""

from __future__ import annotations

__all__ = ["label_key"]


def label_key(value: object) -> str:
    """The string a class label is compared by."""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
