"""The base of the reader, checker and writer compilers: one function per type node."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, TypeVar, cast

from schemas.codec._types import _FLOATS, _NAMED, _PRIMITIVES, _Types

F = TypeVar("F", bound=Callable[..., Any])


class _Compiler(Generic[F]):
    """Turns a schema into one function per type node; each named type compiles once.

    Subclasses list their primitive functions in ``primitives`` (float/double rejecting
    non-finite values) and ``lenient`` (float/double letting them through), and implement
    ``_record``, ``_enum``, ``_fixed``, ``_array``, ``_map`` and ``_union``.
    """

    primitives: ClassVar[Mapping[str, Callable[..., Any]]]
    lenient: ClassVar[Mapping[str, Callable[..., Any]]]

    def __init__(self, types: _Types) -> None:
        self.types = types
        self.allows_non_finite = False  # set once a float/double lets NaN/inf through
        self._named: dict[tuple[str, bool], F] = {}

    def build(self, node: Any, allow: bool) -> F:
        """Compile ``node``; ``allow`` says whether non-finite floats pass below it."""
        kind, spec = self.types.resolve(node)
        if kind in _PRIMITIVES:
            self.allows_non_finite |= allow and kind in _FLOATS
            return cast(F, (self.lenient if allow and kind in _FLOATS else self.primitives)[kind])
        method = cast(Callable[[Any, bool], F], getattr(self, f"_{kind}"))
        if kind not in _NAMED:
            return method(spec, allow)
        key = (spec["name"], allow)
        if key not in self._named:
            cell: list[F] = []  # a recursive type refers to itself before it is built
            self._named[key] = cast(F, lambda *args: cell[0](*args))
            cell.append(method(spec, allow))
            self._named[key] = cell[0]
        return self._named[key]

    def build_field(self, field: Mapping[str, Any], allow: bool) -> F:
        return self.build(field["type"], self.field_allows(field, allow))

    @staticmethod
    def field_allows(field: Mapping[str, Any], allow: bool) -> bool:
        return bool(field.get("allow_non_finite", allow))

    def stretches(self, fields: list[dict[str, Any]], allow: bool) -> list[list[dict[str, Any]]]:
        """Fields in groups: runs of consecutive double fields that agree on non-finite
        values (one ``struct`` call reads or writes a run), else single fields."""
        groups: list[list[dict[str, Any]]] = []
        for field in fields:
            if groups and self._doubles_alike(groups[-1][-1], field, allow):
                groups[-1].append(field)
            else:
                groups.append([field])
        return groups

    def _doubles_alike(self, one: Mapping[str, Any], other: Mapping[str, Any], allow: bool) -> bool:
        kinds = {self.types.kind(one["type"]), self.types.kind(other["type"])}
        same_allow = self.field_allows(one, allow) == self.field_allows(other, allow)
        return kinds == {"double"} and same_allow
