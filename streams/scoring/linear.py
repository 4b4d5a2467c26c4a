"""Compile River linear pipelines into numpy arithmetic that gives River's own numbers.

River scores one dict at a time. A linear pipeline is only arithmetic, so
:func:`compile_river` turns it, once per loaded model, into a :class:`LinearProgram` that
scores a micro-batch column by column: 0.4-0.5 µs a row against River's 4-8 µs (500 rows,
10 doubles and an ignored string, dev VM, River 0.26.1, numpy 2.4). These compile; anything
else gives None ("use River's row loop"):

- ``[Select] → {StandardScaler | MinMaxScaler | MaxAbsScaler | Select}* → final``,
- ``[Select] → OneHotEncoder → final``, or a bare final, where final is
  ``LogisticRegression`` / ``Perceptron`` (sigmoid) or ``LinearRegression`` (identity).

Exact by construction: each step does River's float operations in River's order. A
scaler's per-feature choice (zero variance or range, unseen feature) and its constants
(Python's ``var ** 0.5``) are fixed at compile time; ``(x - a) / b`` is then the same IEEE
operation on an array. The dot product is River's ``VectorDict.dot``: over the row's keys
in the row's order, each value converted to float (a string anywhere raises), a missing
weight counting as ``0.0`` (an unknown feature holding inf or NaN makes the score NaN),
summed left to right from ``0.0``. The sigmoid is River's, clamped at ±30, with ``np.exp``
for ``math.exp`` (≤ 1 ulp apart). Regression outputs are bit-identical; probabilities are
within 1e-15.

:class:`Uncompilable` (a ``ValueError``) says a batch holds something the program does not
reproduce exactly (None or a string where River computes, a ``Select`` of an absent field,
learn-during-predict on): the caller scores that batch with River's row loop, which then
succeeds or fails as River does. Values are expected as Python scalars, as Avro and JSON
decoding give them (a numpy float32 among a column's floats would be widened where River
computes in float32). Weights and statistics are read at compile time; only River 0.26
(whose source this mirrors) compiles.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import river
from river import compose, linear_model, optim, preprocessing

__all__ = ["LinearProgram", "Uncompilable", "compile_river"]

Floats = npt.NDArray[np.float64]
Columns = Mapping[str, Sequence[Any]]

_RIVER = "0.26."
_EXACT_INT = 2**52  # int inputs and int constants this small: float arithmetic is exact
_CATEGORY_TYPES = frozenset({str, int, float, bool, type(None)})


class Uncompilable(ValueError):  # noqa: N818 - the name the scorer's adapter expects
    """This batch has a value the program cannot reproduce exactly: use River's row loop."""


@dataclass(frozen=True)
class _Op:
    """What a scaler does to one feature: ``(x - sub) / div``, or ``const`` whatever x is.

    ``ints``: a constant is a Python int; River's int arithmetic with int inputs is exact,
    the program's float arithmetic matches it for inputs within ±2**52.
    """

    sub: float = 0.0
    div: float = 1.0
    const: float | None = None
    ints: bool = False

    def apply(self, x: float) -> float:
        return self.const if self.const is not None else (x - self.sub) / self.div


_ZERO = _Op(const=0.0)


@dataclass(frozen=True)
class _Select:
    keys: tuple[Any, ...]  # the set's iteration order, which River's dict follows


@dataclass(frozen=True)
class _Scale:
    known: Mapping[Any, _Op]
    unseen: _Op

    def op(self, key: Any) -> _Op:
        return self.known.get(key, self.unseen)


@dataclass(frozen=True)
class _OneHot:
    order: Mapping[str, int]  # the zero keys each output starts with, in River's order
    categories: Mapping[Any, frozenset[Any]] | None  # None: every value is encoded


@dataclass(frozen=True)
class _Final:
    weights: Mapping[Any, float]
    intercept: float
    classify: bool


_Step = _Select | _Scale | _OneHot


def _shadowed(obj: Any, *names: str) -> bool:
    return any(name in getattr(obj, "__dict__", {}) for name in names)


def _exact(value: Any) -> bool:
    """A constant whose arithmetic River and the program do alike."""
    return isinstance(value, float) or (isinstance(value, int) and abs(value) <= _EXACT_INT)


def _standard(scaler: Any) -> _Scale | None:
    if not scaler.with_std:
        if not all(isinstance(m, float) for m in scaler.means.values()):
            return None
        return _Scale({k: _Op(sub=float(m)) for k, m in scaler.means.items()}, _Op(sub=0.0))
    known: dict[Any, _Op] = {}
    for key, var in scaler.vars.items():
        mean = scaler.means.get(key, 0.0)
        if not var:
            known[key] = _ZERO
        elif not (isinstance(var, float) and isinstance(mean, float)) or var < 0:
            return None  # a negative variance has a complex std
        else:
            known[key] = _Op(sub=float(mean), div=float(var**0.5))  # River's own ``v**0.5``
    return _Scale(known, _ZERO)


def _range_op(lo: Any, hi: Any) -> _Op | None:
    if not (_exact(lo) and _exact(hi)):
        return None
    span = hi - lo
    if not span:
        return _ZERO
    return _Op(sub=float(lo), div=float(span), ints=isinstance(lo, int) or isinstance(span, int))


def _peak_op(peak: Any) -> _Op | None:
    if not peak:
        return _ZERO
    return _Op(div=float(peak), ints=isinstance(peak, int)) if _exact(peak) else None


def _scale(known: Mapping[Any, _Op | None], unseen: _Op | None) -> _Scale | None:
    ops = {k: op for k, op in known.items() if op is not None}
    return None if unseen is None or len(ops) != len(known) else _Scale(ops, unseen)


def _minmax(scaler: Any) -> _Scale | None:
    lows, highs = scaler.min, scaler.max
    lo0, hi0 = lows.default_factory().get(), highs.default_factory().get()
    known = {
        key: _range_op(
            lows[key].get() if key in lows else lo0, highs[key].get() if key in highs else hi0
        )
        for key in {**lows, **highs}
    }
    return _scale(known, _range_op(lo0, hi0))


def _maxabs(scaler: Any) -> _Scale | None:
    return _scale({k: _peak_op(stat.get()) for k, stat in scaler.abs_max.items()}, _ZERO)


def _onehot(encoder: Any) -> _OneHot | None:
    order = {} if encoder.drop_zeros else {k: i for i, k in enumerate(encoder._zero_dict)}
    if encoder.drop_first:
        return None
    if encoder.categories is None:
        return _OneHot(order, None)
    values = encoder.values
    if type(values) is not dict or not all(isinstance(v, set | frozenset) for v in values.values()):
        return None  # a defaultdict invents features; a str's ``in`` finds substrings
    return _OneHot(order, {f: frozenset(v) for f, v in values.items()})


_TRANSFORMS: dict[type, Callable[[Any], _Step | None]] = {
    compose.Select: lambda step: _Select(tuple(step.keys)),
    preprocessing.StandardScaler: _standard,
    preprocessing.MinMaxScaler: _minmax,
    preprocessing.MaxAbsScaler: _maxabs,
    preprocessing.OneHotEncoder: _onehot,
}


def _transform(step: Any) -> _Step | None:
    make = _TRANSFORMS.get(type(step))
    if make is None or _shadowed(step, "transform_one"):
        return None
    if getattr(step, "window_size", None) is not None:
        return None  # rolling statistics
    return make(step)


def _finite(value: Any) -> bool:
    try:
        return isinstance(value, float | int) and math.isfinite(value)
    except OverflowError:
        return False


def _final(estimator: Any, task: str) -> _Final | None:
    kinds: tuple[type, ...]
    if task == "classification":
        kinds = (linear_model.LogisticRegression, linear_model.Perceptron)
        link: Any = optim.losses.BinaryLoss.mean_func
    elif task == "regression":
        kinds, link = (linear_model.LinearRegression,), optim.losses.RegressionLoss.mean_func
    else:
        return None
    if type(estimator) not in kinds or type(estimator.loss).mean_func is not link:
        return None
    if _shadowed(estimator, "predict_one", "predict_proba_one", "_raw_dot_one"):
        return None
    weights, intercept = estimator.weights, estimator.intercept
    if _shadowed(estimator.loss, "mean_func") or not all(
        map(_finite, [*weights.values(), intercept])
    ):
        return None
    return _Final({k: float(w) for k, w in weights.items()}, float(intercept), task[0] == "c")


def compile_river(model: Any, task: str) -> LinearProgram | None:
    """Compile ``model`` for ``task`` ("classification" or "regression"), or None.

    >>> from river import compose, linear_model, preprocessing
    >>> model = compose.Select("x") | preprocessing.StandardScaler()
    >>> model |= linear_model.LogisticRegression()
    >>> for x, y in [(1.0, True), (-1.0, False), (3.0, True)]:
    ...     model.learn_one({"x": x, "group": "a"}, y)
    >>> program = compile_river(model, "classification")
    >>> program.classes
    [False, True]
    >>> proba = program.predict({"x": [0.5, -2.0], "group": ["a", "b"]}, 2)
    >>> proba[0].tolist() == list(model.predict_proba_one({"x": 0.5, "group": "a"}).values())
    True
    >>> unsupported = preprocessing.StandardScaler() | linear_model.PAClassifier()
    >>> compile_river(unsupported, "classification") is None
    True
    """
    if not getattr(river, "__version__", "").startswith(_RIVER):
        return None
    steps = list(model.steps.values()) if type(model) is compose.Pipeline else [model]
    final = _final(steps[-1], task) if steps else None
    made = [_transform(step) for step in steps[:-1]]
    transforms = tuple(t for t in made if t is not None)
    if final is None or len(transforms) != len(made):
        return None
    *before, last = transforms or (None,)
    if any(isinstance(t, _OneHot) for t in before):
        return None  # an encoder compiles only as the last transform ...
    if isinstance(last, _OneHot) and not all(isinstance(t, _Select) for t in before):
        return None  # ... of raw values
    return LinearProgram(transforms, final, model if transforms else None)


class _Plan(Protocol):
    """The dot product for one layout of columns (their names, in order)."""

    def dot(self, columns: Columns, n: int) -> Floats: ...


@dataclass(frozen=True)
class _Failing:
    reason: str

    def dot(self, columns: Columns, n: int) -> Floats:
        raise Uncompilable(self.reason)


def _column(columns: Columns, name: str, n: int) -> Sequence[Any]:
    values = columns[name]
    if len(values) != n:
        raise ValueError(f"column {name!r} has {len(values)} values, expected {n}")
    return values


def _floats(columns: Columns, names: Sequence[str], n: int) -> Floats:
    """The named columns as one (len(names), n) float matrix, or Uncompilable."""
    data = [_column(columns, name, n) for name in names]
    try:
        matrix = np.array(data) if data else np.empty((0, n))
    except (OverflowError, TypeError, ValueError) as exc:
        raise Uncompilable(f"columns {list(names)} do not convert to numbers: {exc}") from exc
    if matrix.dtype.kind in "iub" or matrix.dtype == np.float64:
        return matrix.astype(np.float64, copy=False)
    for name, values in zip(names, data, strict=True):
        kinds = {type(v).__name__ for v in values}
        if not kinds <= {"float", "int", "bool"}:
            raise Uncompilable(f"column {name!r}: expected int, float or bool, got {sorted(kinds)}")
    raise Uncompilable(f"columns {list(names)} convert to {matrix.dtype}, not float64")


@dataclass(frozen=True)
class _Dense:
    """Scale the dot's rows stage by stage, weight them, interleave constant terms, sum."""

    names: tuple[str, ...]  # the dot's rows, then columns River only requires to be numbers
    rows: int
    stages: tuple[tuple[Floats | None, Floats | None], ...]  # (rows, 1) subtrahends, divisors
    weights: Floats  # (rows, 1)
    guard: list[int]  # rows whose ints must stay within ±2**52
    const_before: tuple[int, ...]  # constant term i goes before dot row const_before[i]
    const_terms: Floats  # (consts, 1)

    def dot(self, columns: Columns, n: int) -> Floats:
        matrix = _floats(columns, self.names, n)
        if self.guard and np.any(np.abs(matrix[self.guard]) > _EXACT_INT):
            raise Uncompilable("an int beyond 2**52 meets an int scaler constant")
        values = matrix[: self.rows]
        with np.errstate(all="ignore"):  # inf and NaN arise silently in River's floats too
            for sub, div in self.stages:
                values = values if sub is None else values - sub
                values = values if div is None else values / div
            terms = values * self.weights
            if self.const_before:
                terms = np.insert(terms, self.const_before, self.const_terms * np.ones(n), 0)
            # along the outer axis of a C-ordered matrix numpy adds row after row: River's order
            total: Floats = np.add.reduce(np.ascontiguousarray(terms), axis=0, initial=0.0)
        return total


@dataclass
class _Chain:
    """What the steps did to one feature so far."""

    ops: list[_Op] = field(default_factory=list)
    const: float | None = None
    numeric: bool = False  # River did arithmetic on the raw value: it must be a number
    ints: bool = False

    def then(self, op: _Op) -> None:
        if self.const is not None:
            self.const = op.apply(self.const)
        elif op.const is not None:
            self.const = op.const  # River does not look at the value
        else:
            self.numeric, self.ints = True, self.ints or op.ints
            self.ops.append(op)


def _select(keys: Sequence[Any], step: _Select) -> list[Any]:
    missing = [k for k in step.keys if k not in keys]
    if missing:
        raise Uncompilable(f"Select needs {missing[0]!r}, absent from the batch (River: KeyError)")
    return list(step.keys)


def _vector(values: Sequence[float]) -> Floats:
    return np.array(values, dtype=np.float64).reshape(-1, 1)


def _stage(rows: Sequence[_Chain], at: int) -> tuple[Floats | None, Floats | None]:
    subs, divs = _vector([c.ops[at].sub for c in rows]), _vector([c.ops[at].div for c in rows])
    return (subs if subs.any() else None, None if (divs == 1.0).all() else divs)


def _dense(steps: Sequence[_Step], final: _Final, names: Sequence[str]) -> _Plan:
    keys, chains = list(names), {k: _Chain() for k in names}
    for step in steps:
        if isinstance(step, _Select):
            keys = _select(keys, step)  # dropped features keep their chain: River checked them
        elif isinstance(step, _Scale):
            for key in keys:
                chains[key].then(step.op(key))
    rows = [k for k in keys if chains[k].const is None]
    checked = [k for k in names if chains[k].numeric and k not in rows]
    consts = []  # (dot rows before it, weight * constant); adding a zero term changes nothing
    for i, key in enumerate(keys):
        const = chains[key].const
        if const is not None and (term := final.weights.get(key, 0.0) * const) != 0.0:
            consts.append((sum(chains[k].const is None for k in keys[:i]), term))
    return _Dense(
        names=tuple(rows + checked),
        rows=len(rows),
        stages=tuple(_stage([chains[k] for k in rows], at) for at in range(_depth(steps, rows))),
        weights=_vector([final.weights.get(k, 0.0) for k in rows]),
        guard=[i for i, k in enumerate(rows) if chains[k].ints],
        const_before=tuple(before for before, _ in consts),
        const_terms=_vector([term for _, term in consts]),
    )


def _depth(steps: Sequence[_Step], rows: Sequence[Any]) -> int:
    return sum(isinstance(s, _Scale) for s in steps) if rows else 0


@dataclass(frozen=True)
class _Encoded:
    """Per row and feature, the weight of River's one-hot key, summed in River's key order."""

    features: tuple[str, ...]
    categories: tuple[frozenset[Any] | None, ...]
    table: Mapping[str, tuple[int, float]]  # key → (place among the zero keys or -1, weight)
    appended: int  # keys that are not zero keys come after them, in feature order

    def dot(self, columns: Columns, n: int) -> Floats:
        weights = np.zeros((len(self.features), n))
        places = np.zeros((len(self.features), n), dtype=np.int64)
        for j, name in enumerate(self.features):
            hits = self._hits(name, _column(columns, name, n), self.categories[j])
            weights[j] = [w for _, w in hits]
            places[j] = [p if p >= 0 else self.appended + j for p, _ in hits]
        if len(self.features) > 1:
            weights = np.take_along_axis(weights, np.argsort(places, axis=0, kind="stable"), 0)
        with np.errstate(all="ignore"):
            total: Floats = np.add.reduce(weights, axis=0, initial=0.0)
        return total

    def _hits(self, name: str, values: Sequence[Any], cats: frozenset[Any] | None) -> list[Any]:
        kinds = set(map(type, values))
        if not kinds <= _CATEGORY_TYPES:
            got = sorted(t.__name__ for t in kinds)
            raise Uncompilable(f"column {name!r}: expected str, int, float, bool or None, {got}")
        get, miss = self.table.get, (-1, 0.0)
        if cats is None:
            return [get(f"{name}_{v}", miss) for v in values]  # River's key, formatted alike
        return [get(f"{name}_{v}", miss) if v in cats else miss for v in values]


def _encoded(steps: Sequence[_Step], final: _Final, names: Sequence[str]) -> _Plan:
    *selects, encoder = steps
    keys = list(names)
    for step in selects:
        keys = _select(keys, step) if isinstance(step, _Select) else keys
    if any(b.startswith(f"{a}_") for a in keys for b in keys if a != b):
        raise Uncompilable(f"the one-hot keys of {keys} may collide")
    assert isinstance(encoder, _OneHot)
    cats = encoder.categories
    if cats is not None and (absent := [k for k in keys if k not in cats]):
        raise Uncompilable(f"no categories for {absent[0]!r} (River: KeyError)")
    table = {
        k: (encoder.order.get(k, -1), w)
        for k, w in final.weights.items()
        if isinstance(k, str) and w != 0.0  # a zero weight adds nothing
    }
    per_feature = tuple(cats[k] if cats is not None else None for k in keys)
    return _Encoded(tuple(keys), per_feature, table, len(encoder.order))


def _probabilities(score: Floats) -> Floats:
    """River's ``{False: 1 - p, True: p}`` with ``utils.math.sigmoid``'s clamp at ±30."""
    with np.errstate(over="ignore", invalid="ignore"):  # exp overflows only where clamped
        p = 1.0 / (1.0 + np.exp(-score))
    p[score < -30.0] = 0.0
    p[score > 30.0] = 1.0
    return np.column_stack((1.0 - p, p))


class LinearProgram:
    """A compiled River linear model; ``predict`` gives River's numbers for a whole batch.

    ``classes``: the class objects in ``predict_proba_one``'s order; None for regression.
    """

    _LAYOUTS = 16  # plans kept, one per layout of columns

    def __init__(self, steps: tuple[_Step, ...], final: _Final, pipeline: Any) -> None:
        self.classes: list[Any] | None = [False, True] if final.classify else None
        self._steps = steps
        self._final = final
        self._pipeline = pipeline
        self._plans: dict[tuple[str, ...], _Plan] = {}

    def predict(self, columns: Columns, n: int) -> Floats:
        """(n, len(classes)) probabilities, or (n,) regression outputs, as River gives them.

        ``columns``: one list of n values per request field, in the request's field order.
        Raises Uncompilable when the batch cannot be done exactly.
        """
        if getattr(self._pipeline, "_LEARN_UNSUPERVISED_DURING_PREDICT", False):
            raise Uncompilable("learn_during_predict is on: River updates the scalers")
        score = self._plan(tuple(columns)).dot(columns, n) + self._final.intercept
        return score if self.classes is None else _probabilities(score)

    def _plan(self, names: tuple[str, ...]) -> _Plan:
        plan = self._plans.get(names)
        if plan is None:
            encoding = bool(self._steps) and isinstance(self._steps[-1], _OneHot)
            try:
                plan = (_encoded if encoding else _dense)(self._steps, self._final, names)
            except Uncompilable as exc:  # every batch with these columns fails alike
                plan = _Failing(str(exc))
            if len(self._plans) >= self._LAYOUTS:
                self._plans.clear()
            self._plans[names] = plan
        return plan
