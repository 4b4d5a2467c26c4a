"""Checking JSON and Python values against the schema: compiled ``value -> normalized``."""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Mapping
from operator import itemgetter
from typing import Any, Final, cast

from schemas.codec._compile import _Compiler
from schemas.codec._types import (
    _FLOAT_MAX,
    _INT_MAX,
    _INT_MIN,
    _LONG_MAX,
    _LONG_MIN,
    _PY_TYPES,
    Record,
    _Types,
)
from schemas.codec.errors import (
    ContractError,
    DecodeError,
    MissingFieldError,
    NotFiniteError,
    SchemaError,
    UnknownFieldError,
    WrongTypeError,
)

Check = Callable[[Any], Any]
Select = Callable[[Any], tuple[int, Any]]
_MISSING: Final = object()
_NON_FINITE_NAMES: Final = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _describe(value: Any) -> str:
    """Name a value for an error message: ``string 'abc'``, ``integer 5``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        text = repr(value)
        return f"string {text if len(text) <= 40 else text[:36] + '...' + text[0]}"
    if isinstance(value, int | float):
        return f"{'integer' if isinstance(value, int) else 'number'} {str(value)[:40]}"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"{len(value)} bytes"
    if isinstance(value, list | tuple):
        return f"array of {len(value)}"
    return "object" if isinstance(value, dict) else type(value).__name__


def _check_null(value: Any) -> None:
    if value is not None:
        raise WrongTypeError(f"expected null, got {_describe(value)}")


def _check_boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise WrongTypeError(f"expected boolean, got {_describe(value)}")
    return value


def _integer(value: Any, low: int, high: int, label: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise WrongTypeError(f"expected {label}, got {_describe(value)}")
    number = int(value)
    if not low <= number <= high:
        raise WrongTypeError(f"expected {label}, got integer {number} out of range")
    return number


def _check_int(value: Any) -> int:
    if type(value) is int and _INT_MIN <= value <= _INT_MAX:
        return value
    return _integer(value, _INT_MIN, _INT_MAX, "int (32-bit)")


def _check_long(value: Any) -> int:
    if type(value) is int and _LONG_MIN <= value <= _LONG_MAX:
        return value
    return _integer(value, _LONG_MIN, _LONG_MAX, "long (64-bit)")


def _real(value: Any, allow: bool, label: str, limit: float) -> float:
    """Slow path of float/double checks: ints, numpy scalars, named non-finite values."""
    if isinstance(value, str) and value in _NON_FINITE_NAMES:
        number = _NON_FINITE_NAMES[value]
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise WrongTypeError(f"expected {label}, got {_describe(value)}")
    else:
        try:
            number = float(value)
        except OverflowError:
            raise WrongTypeError(f"expected {label}, got {_describe(value)} out of range") from None
    if not math.isfinite(number):
        if allow:
            return number
        raise NotFiniteError(f"expected finite {label}, got {_describe(value)}")
    if abs(number) > limit:
        raise WrongTypeError(f"expected {label}, got {_describe(value)} out of range")
    return number


def _check_double(value: Any) -> float:
    if type(value) is float and value - value == 0.0:
        return value
    return _real(value, False, "double", math.inf)


def _check_any_double(value: Any) -> float:
    return value if type(value) is float else _real(value, True, "double", math.inf)


def _check_float(value: Any) -> float:
    if type(value) is float and -_FLOAT_MAX <= value <= _FLOAT_MAX:
        return value
    return _real(value, False, "float", _FLOAT_MAX)


def _check_any_float(value: Any) -> float:
    if type(value) is float and (value - value != 0.0 or -_FLOAT_MAX <= value <= _FLOAT_MAX):
        return value  # non-finite, or finite within float32's range
    return _real(value, True, "float", _FLOAT_MAX)


def _check_string(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str(value)
    raise WrongTypeError(f"expected string, got {_describe(value)}")


def _check_bytes(value: Any) -> bytes:
    if type(value) is bytes:
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError:
            raise WrongTypeError("expected bytes as code points 0-255, got wider text") from None
    raise WrongTypeError(f"expected bytes, got {_describe(value)}")


def _first_match(candidates: list[tuple[int, Check]], value: Any, label: str) -> tuple[int, Any]:
    first: DecodeError | None = None
    for index, check in candidates:
        try:
            return index, check(value)
        except DecodeError as exc:
            first = first or exc
    raise WrongTypeError(f"expected {label}, got {_describe(value)}") from first


def _unknown_fields(value: Mapping[Any, Any], known: list[str], record: str) -> UnknownFieldError:
    extra = [str(key) for key in value if key not in known]
    others = f" (also unknown: {', '.join(extra[1:4])})" if len(extra) > 1 else ""
    names = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
    detail = f"not a field of record {record}{others}; expected fields: {names}"
    return UnknownFieldError(detail, field=extra[0])


class _Checker(_Compiler[Check]):
    """Compiles checks ``value -> normalized value`` for JSON and Python records.

    A value that needs no change comes back as the same object, so a valid record is not
    copied. ``drop_unknown`` ignores unknown record fields instead of rejecting them (to
    resolve a record written with another version of the schema).
    """

    primitives = {
        "null": _check_null, "boolean": _check_boolean, "int": _check_int,
        "long": _check_long, "float": _check_float, "double": _check_double,
        "string": _check_string, "bytes": _check_bytes,
    }  # fmt: skip
    lenient = {"float": _check_any_float, "double": _check_any_double}

    def __init__(self, types: _Types, *, drop_unknown: bool = False) -> None:
        super().__init__(types)
        self.drop_unknown = drop_unknown

    def _fixed(self, spec: Any, allow: bool) -> Check:
        size, label = int(spec["size"]), self.types.label(spec)

        def check_fixed(value: Any) -> bytes:
            data = _check_bytes(value)
            if len(data) != size:
                raise WrongTypeError(f"expected {label} of {size} bytes, got {len(data)} bytes")
            return data

        return check_fixed

    def _enum(self, spec: Any, allow: bool) -> Check:
        symbols = frozenset(spec["symbols"])
        expected = f"one of {', '.join(spec['symbols'])} ({self.types.label(spec)})"

        def check_enum(value: Any) -> str:
            if type(value) is str and value in symbols:
                return value
            raise WrongTypeError(f"expected {expected}, got {_describe(value)}")

        return check_enum

    def _array(self, spec: Any, allow: bool) -> Check:
        check_item = self.build(spec["items"], allow)

        def check_array(value: Any) -> list[Any]:
            if not isinstance(value, list | tuple):
                raise WrongTypeError(f"expected array, got {_describe(value)}")
            items, same = [], type(value) is list
            for index, item in enumerate(value):
                try:
                    checked = check_item(item)
                except ContractError as exc:
                    raise exc._within(f"[{index}]") from None
                items.append(checked)
                same = same and checked is item
            return value if same else items  # type: ignore[return-value]  # same: a list

        return check_array

    def _map(self, spec: Any, allow: bool) -> Check:
        check_value = self.build(spec["values"], allow)

        def check_map(value: Any) -> dict[str, Any]:
            if not isinstance(value, Mapping):
                raise WrongTypeError(f"expected object (map), got {_describe(value)}")
            entries, same = {}, type(value) is dict
            for key, item in value.items():
                if type(key) is not str:
                    raise WrongTypeError(f"expected string map keys, got {_describe(key)}")
                try:
                    entries[key] = checked = check_value(item)
                except ContractError as exc:
                    raise exc._within(f"[{key}]") from None
                same = same and checked is item
            return value if same else entries  # type: ignore[return-value]  # same: a dict

        return check_map

    def _union(self, spec: Any, allow: bool) -> Check:
        select = self.selector(spec, allow)
        return lambda value: select(value)[1]

    def selector(self, spec: list[Any], allow: bool) -> Select:
        """Pick a union branch by the value's Python type (an int may widen to float or
        double, a string to bytes); when several branches fit, the first that checks wins."""
        branches = [(index, self.build(branch, allow)) for index, branch in enumerate(spec)]
        kinds = [self.types.kind(branch) for branch in spec]
        widen = {"float": int, "double": int, "bytes": str, "fixed": str}
        by_type: dict[type, list[tuple[int, Check]]] = {}
        for branch, kind in zip(branches, kinds, strict=True):
            by_type.setdefault(_PY_TYPES[kind], []).append(branch)
        for branch, kind in zip(branches, kinds, strict=True):
            if kind in widen:
                by_type.setdefault(widen[kind], []).append(branch)
        label = self.types.label(spec)

        def select(value: Any) -> tuple[int, Any]:
            candidates = by_type.get(type(value), branches)
            if len(candidates) == 1:
                index, check = candidates[0]
                return index, check(value)
            return _first_match(candidates, value, label)

        return select

    def _record(self, spec: Any, allow: bool) -> Check:
        fields = [self._field(field, allow) for field in spec["fields"]]
        probes = self._probes(spec["fields"], allow)
        normalize = _record_normalizer(fields, spec["name"], self.drop_unknown)
        count = len(fields)

        def check_record(value: Any) -> Record:
            if type(value) is dict and len(value) == count:
                try:
                    for probe in probes:
                        if not probe(value):
                            break
                    else:
                        return cast(Record, value)
                except ContractError:
                    pass  # normalize raises it again, with the field's path
            return normalize(value)  # type: ignore[no-any-return]  # normalize: a dict

        return check_record

    def _field(self, field: Mapping[str, Any], allow: bool) -> tuple[str, Check, Callable[[], Any]]:
        """``(name, check, default factory)``; the factory raises when there is no default."""
        name, check = field["name"], self.build_field(field, allow)
        if "default" not in field:
            expected = self.types.label(field["type"])

            def no_default() -> Any:
                detail = f"expected {expected}, got nothing (no default)"
                raise MissingFieldError(detail, field=name)

            return name, check, no_default
        try:
            default = check(field["default"])
        except ContractError as exc:
            raise SchemaError(f"default of field {name!r} does not fit its type: {exc}") from None
        if isinstance(default, dict | list):
            return name, check, lambda: copy.deepcopy(default)
        return name, check, lambda: default

    def _probes(self, fields: list[dict[str, Any]], allow: bool) -> list[Callable[[Record], bool]]:
        """Fast yes/no checks that a dict's fields are present and need no change."""
        probes = []
        for group in self.stretches(fields, allow):
            if len(group) > 1 and not self.field_allows(group[0], allow):
                probes.append(_doubles_probe([field["name"] for field in group]))
            else:
                probes += [
                    _field_probe(field["name"], self.build_field(field, allow)) for field in group
                ]
        return probes


def _field_probe(name: str, check: Check) -> Callable[[Record], bool]:
    def probe(record: Record) -> bool:
        item = record.get(name, _MISSING)
        return item is not _MISSING and check(item) is item

    return probe


def _doubles_probe(names: list[str]) -> Callable[[Record], bool]:
    get = itemgetter(*names)

    def probe(record: Record) -> bool:
        try:
            values = get(record)
        except KeyError:
            return False
        for value in values:
            if type(value) is not float:
                return False
        return math.isfinite(sum(values))

    return probe


def _record_normalizer(
    fields: list[tuple[str, Check, Callable[[], Any]]], full_name: str, drop_unknown: bool
) -> Check:
    """Check every field into a new dict: defaults filled, values widened, paths on errors."""
    known, record = [name for name, _, _ in fields], full_name.rpartition(".")[2]

    def normalize(value: Any) -> Record:
        if not isinstance(value, Mapping):
            raise WrongTypeError(f"expected object (record {record}), got {_describe(value)}")
        out: Record = {}
        seen = 0
        for name, check, default in fields:
            item = value.get(name, _MISSING)
            if item is _MISSING:
                out[name] = default()
                continue
            seen += 1
            try:
                out[name] = check(item)
            except ContractError as exc:
                raise exc._within(name) from None
        if seen != len(value) and not drop_unknown:
            raise _unknown_fields(value, known, record)
        return out

    return normalize
