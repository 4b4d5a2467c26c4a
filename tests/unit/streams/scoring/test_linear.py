"""Compiled River linear pipelines give River's own numbers (streams.scoring.linear).

Every model here is trained with ``learn_one`` and compared with River row by row on
random batches that include extreme magnitudes, signed zeros, ints, bools, inf and NaN.
Tolerances: probabilities 1e-9 absolute (the program is within 1e-15: ``np.exp`` and
``math.exp`` differ by an ulp); regression |a - b| <= 1e-9 + 1e-12 |b|, and in fact
bit-identical, which one test pins.
"""

from __future__ import annotations

import decimal
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from river import compose, linear_model, multiclass, optim, preprocessing, tree

from services import synthetic
from streams.scoring.linear import Uncompilable, compile_river

FEATURES = [f"x{i}" for i in range(10)]
EXTREMES: list[Any] = [0.0, -0.0, 1e300, -1e300, 1e-300, -5e-324, 1e12, -1e12, 7, -3, 0]
EXTREMES += [True, False, 2**40, float("inf"), float("-inf"), float("nan")]

Row = dict[str, Any]


def _value(rng: random.Random) -> Any:
    return rng.choice(EXTREMES) if rng.random() < 0.15 else rng.gauss(0.0, 2.0)


def _rows(count: int, seed: int, **extra: Callable[[random.Random], Any]) -> list[Row]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        row: Row = {name: _value(rng) for name in FEATURES}
        row["group"] = rng.choice("abc")
        rows.append(row | {name: make(rng) for name, make in extra.items()})
    return rows


def _columns(rows: list[Row]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in rows[0]}


def _river(model: Any, rows: list[Row], task: str) -> np.ndarray:
    if task == "regression":
        return np.array([model.predict_one(row) for row in rows], dtype=float)
    return np.array([list(model.predict_proba_one(row).values()) for row in rows], dtype=float)


def _assert_same(model: Any, task: str, rows: list[Row]) -> np.ndarray:
    program = compile_river(model, task)
    assert program is not None
    got = program.predict(_columns(rows), len(rows))
    expected = _river(model, rows, task)
    assert got.shape == expected.shape and got.dtype == np.float64
    rtol = 1e-12 if task == "regression" else 0.0
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=1e-9)
    return got


def _train(model: Any, task: str, rows: int = 1500, drop: tuple[str, ...] = ()) -> Any:
    for row, label in synthetic.labelled_rows(rows, seed=5, sensitive=True):
        x = {k: v for k, v in row.items() if k not in drop}
        if task == "regression":
            score = sum(w * row[f"x{i}"] for i, w in enumerate(synthetic.WEIGHTS))
            model.learn_one(x, 3.0 * score + 1.5)
        else:
            model.learn_one(x, label)
    return model


def _select() -> Any:
    return compose.Select(*FEATURES)


LOGISTIC: dict[str, Callable[[], Any]] = {
    "champion": lambda: synthetic.river_champion(synthetic.labelled_rows(1500, seed=2)),
    "challenger": lambda: synthetic.river_challenger(synthetic.labelled_rows(1500, seed=2)),
    "without_std": lambda: _train(
        _select()
        | preprocessing.StandardScaler(with_std=False)
        | linear_model.LogisticRegression(),
        "classification",
    ),
    "scaler_sees_group": lambda: _train(
        preprocessing.StandardScaler() | linear_model.LogisticRegression(),
        "classification",
        drop=("group",),
    ),
    "minmax": lambda: _train(
        _select() | preprocessing.MinMaxScaler() | linear_model.LogisticRegression(),
        "classification",
    ),
    "std_then_maxabs": lambda: _train(
        _select()
        | preprocessing.StandardScaler()
        | preprocessing.MaxAbsScaler()
        | linear_model.LogisticRegression(optimizer=optim.SGD(0.05), l2=0.001),
        "classification",
    ),
    "perceptron": lambda: _train(
        _select() | preprocessing.StandardScaler() | linear_model.Perceptron(), "classification"
    ),
}

REGRESSION: dict[str, Callable[[], Any]] = {
    "std_linreg": lambda: _train(
        _select() | preprocessing.StandardScaler() | linear_model.LinearRegression(), "regression"
    ),
    "maxabs_linreg": lambda: _train(
        _select() | preprocessing.MaxAbsScaler() | linear_model.LinearRegression(), "regression"
    ),
    "bare_linreg": lambda: _train(
        linear_model.LinearRegression(optimizer=optim.SGD(0.001)), "regression", drop=("group",)
    ),
}


@pytest.mark.parametrize("name", LOGISTIC)
def test_probabilities_equal_rivers(name: str) -> None:
    model = LOGISTIC[name]()
    rows = _rows(1200, seed=11)
    proba = _assert_same(model, "classification", rows)
    program = compile_river(model, "classification")
    assert program is not None and program.classes == list(model.predict_proba_one(rows[0]))
    for row, p in zip(rows, proba, strict=True):
        river = model.predict_proba_one(row)
        assert program.classes[int(np.argmax(p))] == max(river, key=river.__getitem__)


@pytest.mark.parametrize("name", REGRESSION)
def test_regression_equals_rivers_bit_for_bit(name: str) -> None:
    model = REGRESSION[name]()
    rows = _rows(1200, seed=12)
    if name == "bare_linreg":
        rows = [{k: v for k, v in row.items() if k != "group"} for row in rows]
    got = _assert_same(model, "regression", rows)
    # stronger than the tolerance: River's operations in River's order, so the same floats
    assert np.array_equal(got, _river(model, rows, "regression"), equal_nan=True)
    program = compile_river(model, "regression")
    assert program is not None and program.classes is None


def test_bare_logistic_regression() -> None:
    model = _train(linear_model.LogisticRegression(), "classification", drop=("group",))
    rows = [{k: v for k, v in row.items() if k != "group"} for row in _rows(1000, seed=13)]
    _assert_same(model, "classification", rows)
    # an extra field the model never saw still counts: 0.0 * inf is NaN in River too
    rows = [row | {"extra": float("inf") if i % 3 == 0 else 1.0} for i, row in enumerate(rows)]
    proba = _assert_same(model, "classification", rows)
    assert np.isnan(proba[::3]).all()


def test_a_zero_variance_feature_is_zero_whatever_its_value() -> None:
    model = compose.Select(*FEATURES, "flat") | preprocessing.StandardScaler()
    model |= linear_model.LogisticRegression()
    for row, label in synthetic.labelled_rows(1000, seed=3):
        model.learn_one(row | {"flat": 2.5}, label)
    anything = [None, "text", 2.5, float("nan"), 1e300]
    rows = _rows(1000, seed=14, flat=lambda rng: rng.choice(anything))
    _assert_same(model, "classification", rows)


def test_a_feature_seen_once_and_an_unseen_one() -> None:
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    model = _train(model, "classification", drop=("group",))
    model.learn_one({"x0": 1.0, "rare": 4.0}, True)  # var("rare") == 0
    rows = _rows(1000, seed=15, rare=_value, novel=_value)
    _assert_same(model, "classification", rows)


def test_minmax_poisons_unseen_features_like_river() -> None:
    model = _train(
        preprocessing.MinMaxScaler() | linear_model.LogisticRegression(),
        "classification",
        drop=("group",),
    )
    rows = [{k: v for k, v in row.items() if k != "group"} for row in _rows(200, seed=16)]
    proba = _assert_same(model, "classification", [row | {"new": 1.0} for row in rows])
    assert np.isnan(proba).all()  # (x - inf) / -inf


def test_int_scaler_constants_and_int_inputs() -> None:
    model = compose.Select("a", "b") | preprocessing.MinMaxScaler()
    model |= linear_model.LinearRegression()
    rng = random.Random(4)
    for _ in range(500):
        a, b = rng.randint(-1000, 1000), rng.randint(0, 10**9)
        model.learn_one({"a": a, "b": b}, 0.5 * a - 1e-6 * b)
    rows = [{"a": rng.randint(-2000, 2000), "b": rng.choice([3, 2.5, True])} for _ in range(1000)]
    _assert_same(model, "regression", rows)
    program = compile_river(model, "regression")
    assert program is not None
    with pytest.raises(Uncompilable, match="2\\*\\*52"):
        program.predict({"a": [2**53 + 1], "b": [1]}, 1)


def _encoded(**kwargs: Any) -> Any:
    return compose.Select("group") | preprocessing.OneHotEncoder(**kwargs)


def _train_categories(model: Any, seed: int = 6) -> Any:
    rng = random.Random(seed)
    for _ in range(1500):
        group, tier = rng.choice(["a", "b", "c", "d", 3]), rng.choice(["gold", "silver", 3, None])
        model.learn_one(
            {"group": group, "tier": tier, "x0": 1.0}, (group in (3, "a")) != (tier == 3)
        )
    return model


def _category_rows(count: int, seed: int) -> list[Row]:
    rng = random.Random(seed)
    values = ["a", "b", "c", "d", "zz", None, 3, 3.0, "3", True, float("nan"), ""]
    return [{"x0": 1.0, "group": rng.choice(values), "tier": rng.choice([*values, "gold"])}
            for _ in range(count)]  # fmt: skip


@pytest.mark.parametrize(
    "model",
    [
        _encoded() | linear_model.LogisticRegression(),
        _encoded(drop_zeros=True) | linear_model.LogisticRegression(optimizer=optim.SGD(0.3)),
        _encoded(categories={"group": {"a", "c", 3}}) | linear_model.LogisticRegression(),
        compose.Select("group", "tier") | preprocessing.OneHotEncoder()
        | linear_model.LogisticRegression(optimizer=optim.SGD(0.2)),
    ],
    ids=["one_feature", "drop_zeros", "categories", "two_features"],
)  # fmt: skip
def test_one_hot_encoding_equals_rivers(model: Any) -> None:
    _assert_same(_train_categories(model), "classification", _category_rows(1200, seed=17))


def test_one_hot_sums_in_rivers_key_order() -> None:
    """Three hot keys: only River's order gives River's float (a regression, to compare bits)."""
    model = compose.Select("group", "tier", "shade") | preprocessing.OneHotEncoder()
    model |= linear_model.LinearRegression(optimizer=optim.SGD(0.05))
    rng = random.Random(8)
    for _ in range(2000):
        x = {"group": rng.choice("abcd"), "tier": rng.choice("pqrs"), "shade": rng.choice("uvw")}
        model.learn_one(x, {"a": 1e3, "b": 1e-3}.get(x["group"], 0.0) + rng.gauss(0.0, 1.0))
    shades = ["u", "v", "w", "t"]
    rows = _rows(1500, seed=27, tier=lambda r: r.choice("pqrst"), shade=lambda r: r.choice(shades))
    got = _assert_same(model, "regression", rows)
    assert np.array_equal(got, _river(model, rows, "regression"))


def test_one_hot_keys_that_may_collide_fall_back() -> None:
    model = compose.Select("a", "a_b") | preprocessing.OneHotEncoder()
    model |= linear_model.LogisticRegression()
    model.learn_one({"a": "b_c", "a_b": "c"}, True)
    program = compile_river(model, "classification")
    assert program is not None
    with pytest.raises(Uncompilable, match="collide"):
        program.predict({"a": ["b_c"], "a_b": ["c"]}, 1)


@pytest.fixture(scope="module")
def champion() -> Any:
    return LOGISTIC["champion"]()


@pytest.mark.parametrize(
    ("field", "value"),
    [("x3", None), ("x3", "1.5"), ("x3", decimal.Decimal("1.5")), ("x3", 10**400)],
)
def test_values_river_fails_on_raise_uncompilable(champion: Any, field: str, value: Any) -> None:
    rows = _rows(5, seed=18)
    rows[2][field] = value
    with pytest.raises((TypeError, OverflowError)):
        champion.predict_proba_one(rows[2])
    program = compile_river(champion, "classification")
    assert program is not None
    with pytest.raises(Uncompilable):
        program.predict(_columns(rows), len(rows))


def test_the_ignored_group_may_hold_anything(champion: Any) -> None:
    rows = _rows(300, seed=19)
    for row, value in zip(rows, [None, 3, [1], {"k": 1}] * 75, strict=True):
        row["group"] = value
    _assert_same(champion, "classification", rows)


def test_a_string_river_would_reach_raises() -> None:
    bare = _train(linear_model.LogisticRegression(), "classification", drop=("group",))
    centred = _train(
        preprocessing.StandardScaler(with_std=False) | linear_model.LogisticRegression(),
        "classification",
        drop=("group",),
    )
    centred_then_selected = _train(
        preprocessing.StandardScaler(with_std=False)
        | _select()
        | linear_model.LogisticRegression(),
        "classification",
        drop=("group",),
    )
    rows = _rows(4, seed=20)
    for model in (bare, centred, centred_then_selected):
        with pytest.raises(TypeError):
            model.predict_proba_one(rows[0])  # "group" is a str: VectorDict.dot, str - float
        program = compile_river(model, "classification")
        assert program is not None
        with pytest.raises(Uncompilable):
            program.predict(_columns(rows), len(rows))


def test_select_of_an_absent_field_raises(champion: Any) -> None:
    rows = [{k: v for k, v in row.items() if k != "x4"} for row in _rows(3, seed=21)]
    with pytest.raises(KeyError):
        champion.predict_proba_one(rows[0])
    program = compile_river(champion, "classification")
    assert program is not None
    with pytest.raises(Uncompilable, match="x4"):
        program.predict(_columns(rows), len(rows))


def test_column_order_is_the_rows_key_order() -> None:
    model = _train(
        preprocessing.StandardScaler() | linear_model.LinearRegression(),
        "regression",
        drop=("group",),
    )
    rows = _rows(500, seed=22)
    _assert_same(model, "regression", rows)
    _assert_same(model, "regression", [dict(reversed(row.items())) for row in rows])


def test_learn_during_predict_falls_back(champion: Any) -> None:
    program = compile_river(champion, "classification")
    assert program is not None
    with compose.learn_during_predict(), pytest.raises(Uncompilable):
        program.predict(_columns(_rows(2, seed=23)), 2)


def test_weights_are_read_at_compile_time() -> None:
    model = LOGISTIC["minmax"]()
    rows = _rows(50, seed=24)
    program = compile_river(model, "classification")
    assert program is not None
    before = _river(model, rows, "classification")
    _train(model, "classification", rows=300)
    np.testing.assert_allclose(program.predict(_columns(rows), len(rows)), before, atol=1e-9)


def test_batch_shapes(champion: Any) -> None:
    program = compile_river(champion, "classification")
    assert program is not None
    assert program.predict({name: [] for name in [*FEATURES, "group"]}, 0).shape == (0, 2)
    with pytest.raises(ValueError, match="expected 2"):
        program.predict(_columns(_rows(3, seed=25)), 2)


class _Custom(linear_model.LogisticRegression):
    pass


def _patched() -> Any:
    model = linear_model.LogisticRegression()
    setattr(model, "predict_proba_one", lambda x: {False: 0.5, True: 0.5})  # noqa: B010
    return model


UNSUPPORTED: dict[str, tuple[Callable[[], Any], str]] = {
    "tree": (lambda: preprocessing.StandardScaler() | tree.HoeffdingTreeClassifier(), "c"),
    "passive_aggressive": (lambda: linear_model.PAClassifier(), "c"),
    "softmax": (lambda: linear_model.SoftmaxRegression(), "c"),
    "one_vs_rest": (lambda: multiclass.OneVsRestClassifier(linear_model.LogisticRegression()), "c"),
    "subclass": (lambda: _Custom(), "c"),
    "patched_instance": (_patched, "c"),
    "union": (
        lambda: (compose.Select("x0") + compose.Select("x1")) | linear_model.LogisticRegression(),
        "c",
    ),
    "func_transformer": (
        lambda: compose.FuncTransformer(dict) | linear_model.LogisticRegression(),
        "c",
    ),
    "rolling_scaler": (
        lambda: preprocessing.StandardScaler(window_size=10) | linear_model.LogisticRegression(),
        "c",
    ),
    "drop_first": (
        lambda: preprocessing.OneHotEncoder(drop_first=True) | linear_model.LogisticRegression(),
        "c",
    ),
    "scaled_one_hot": (
        lambda: (
            preprocessing.OneHotEncoder()
            | preprocessing.StandardScaler()
            | linear_model.LogisticRegression()
        ),
        "c",
    ),
    "poisson": (lambda: linear_model.LinearRegression(loss=optim.losses.Poisson()), "r"),
    "wrong_task": (lambda: linear_model.LogisticRegression(), "r"),
    "unknown_task": (lambda: linear_model.LinearRegression(), "ranking"),
}


@pytest.mark.parametrize("name", UNSUPPORTED)
def test_unsupported_models_compile_to_none(name: str) -> None:
    make, task = UNSUPPORTED[name]
    task = {"c": "classification", "r": "regression"}.get(task, task)
    assert compile_river(make(), task) is None


def test_a_negative_variance_compiles_to_none(champion: Any) -> None:
    scaler = preprocessing.StandardScaler()
    scaler.learn_one({"x0": 1.0})
    scaler.learn_one({"x0": 2.0})
    scaler.vars["x0"] = -1e-18
    assert compile_river(scaler | linear_model.LogisticRegression(), "classification") is None


NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e6, max_value=1e6),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
)
ODD = st.one_of(
    st.none(),
    st.text(max_size=3),
    st.decimals(allow_nan=False, allow_infinity=False, places=2, max_value=100, min_value=-100),
    st.integers(min_value=2**63, max_value=2**80),
    st.just(10**400),
)


def _outcome(model: Any, rows: list[Row]) -> np.ndarray | Exception:
    try:
        return _river(model, rows, "classification")
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        return exc


def _conservative(rows: list[Row]) -> bool:
    """Values River takes that the program leaves to River: exotic types, ints past int64."""
    values = [v for row in rows for k, v in row.items() if k != "group"]
    exotic = [v for v in values if type(v) not in (float, int, bool)]
    return bool(exotic) or any(type(v) is int and abs(v) >= 2**63 for v in values)


@pytest.fixture(scope="module")
def property_models(champion: Any) -> list[Any]:
    unselected = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    bare = linear_model.LogisticRegression()
    return [
        champion,
        _train(unselected, "classification", drop=("group",)),
        _train(bare, "classification", drop=("group",)),
    ]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cells=st.lists(st.tuples(NUMBER, NUMBER), min_size=1, max_size=6),
    odd=st.none() | st.tuples(st.integers(0, 5), st.sampled_from(["x1", "x7"]), ODD),
)
def test_uncompilable_exactly_when_river_fails(
    property_models: list[Any], cells: list[tuple[Any, Any]], odd: tuple[int, str, Any] | None
) -> None:
    rows = _rows(len(cells), seed=26)
    for row, (a, b) in zip(rows, cells, strict=True):
        row.update(x1=a, x7=b)
    if odd is not None:
        at, field, value = odd
        rows[at % len(rows)][field] = value
    for model in property_models:
        program = compile_river(model, "classification")
        assert program is not None
        if type(model) is linear_model.LogisticRegression:  # it would fail on the str group
            rows = [{k: v for k, v in row.items() if k != "group"} for row in rows]
        river = _outcome(model, rows)
        try:
            got = program.predict(_columns(rows), len(rows))
        except Uncompilable:
            event("River fails" if isinstance(river, Exception) else "left to River")
            assert isinstance(river, Exception) or _conservative(rows)
            continue
        event("same numbers")
        assert not isinstance(river, Exception)
        np.testing.assert_allclose(got, river, rtol=0.0, atol=1e-9)
