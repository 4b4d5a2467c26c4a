"""A classifier's positive class: declared or inferred at registration, never guessed later."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from river import linear_model
from sklearn.linear_model import LinearRegression, LogisticRegression

from services.registry import InvalidModelError
from services.registry._artifact import serialize
from services.registry._draft import make_draft
from services.registry._positive import positive_label

SCHEMA = {"type": "record", "name": "In", "fields": [{"name": "x", "type": "double"}]}
X = [[0.0], [1.0], [0.2], [0.9]]
AT = datetime(2025, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("classes", "expected"),
    [
        (("0", "1"), "1"),
        (("false", "true"), "true"),  # scikit-learn fitted on booleans
        (("False", "True"), "True"),
        (("no", "YES"), "YES"),
        (("1", "2", "3"), "1"),
        (("churned", "1.0"), None),  # 1.0 is not 1: declare it
    ],
)
def test_inferred_from_the_classes(classes: tuple[str, ...], expected: str | None) -> None:
    if expected is None:
        with pytest.raises(InvalidModelError, match="none reads as true, 1 or yes"):
            positive_label("m", "classification", classes)
    else:
        assert positive_label("m", "classification", classes) == expected


def test_declared_must_be_one_of_the_classes() -> None:
    assert positive_label("m", "classification", ("0", "1"), declared="0") == "0"
    assert positive_label("m", "classification", ("bad", "good"), declared="good") == "good"
    with pytest.raises(InvalidModelError) as refused:
        positive_label("m", "classification", ("0", "1"), declared="True")
    assert str(refused.value) == (
        "'True' is not a class of m (classes: 0, 1); pass --positive-label "
        "(positive_label= in Python) with one of them"
    )


def test_none_or_several_candidates_ask_for_a_declaration() -> None:
    with pytest.raises(InvalidModelError) as none:
        positive_label("loan", "classification", ("approved", "denied"))
    assert str(none.value) == (
        "cannot tell which class of loan is the positive one (classes: approved, denied; "
        "none reads as true, 1 or yes); pass --positive-label (positive_label= in Python) "
        "with one of them"
    )
    with pytest.raises(InvalidModelError, match="1 and yes all do"):
        positive_label("m", "classification", ("0", "1", "yes"))


def test_many_classes_are_listed_briefly() -> None:
    with pytest.raises(InvalidModelError, match=r"c18, c19 and 30 more; none reads"):
        positive_label("m", "classification", tuple(f"c{n}" for n in range(50)))


def test_unknown_classes_take_the_declared_label_or_true() -> None:
    assert positive_label("m", "classification", None) == "True"
    assert positive_label("m", "classification", None, declared="churned") == "churned"


def test_a_regressor_has_no_positive_class() -> None:
    assert positive_label("price", "regression", None) is None
    with pytest.raises(InvalidModelError, match="regression model: it has no positive class"):
        positive_label("price", "regression", None, declared="1")


def test_an_empty_label_is_refused() -> None:
    with pytest.raises(InvalidModelError, match="must not be empty"):
        positive_label("m", "classification", None, declared=" ")


def draft(model: Any, **kwargs: Any) -> Any:
    return make_draft(
        "m", serialize(model), SCHEMA, model=model, task=kwargs.pop("task", None),
        fmt="cloudpickle", max_bytes=10**7, **kwargs,
    )  # fmt: skip


def test_the_draft_records_the_decision() -> None:
    zero_one = LogisticRegression().fit(X, [0, 1, 0, 1])
    booleans = LogisticRegression().fit(X, [False, True, False, True])
    words = LogisticRegression().fit(X, ["stay", "leave", "stay", "leave"])
    assert draft(zero_one).positive_label == "1"
    assert draft(booleans).positive_label == "true"
    assert draft(words, positive_label="leave").positive_label == "leave"
    assert draft(linear_model.LogisticRegression()).positive_label == "True"  # no classes_
    regressor = LinearRegression().fit(X, [0.0, 1.0, 0.5, 2.0])
    assert draft(regressor).positive_label is None
    assert draft(zero_one, task="regression").positive_label is None
    mv = draft(zero_one, positive_label="0").version(1, author="a", at=AT, chunk_count=1)
    assert mv.positive_label == "0"


def test_the_draft_refuses_what_it_cannot_decide() -> None:
    words = LogisticRegression().fit(X, ["stay", "leave", "stay", "leave"])
    with pytest.raises(InvalidModelError, match=r"classes: leave, stay; none reads"):
        draft(words)
    with pytest.raises(InvalidModelError, match="'churned' is not a class of m"):
        draft(words, positive_label="churned")
    regressor = LinearRegression().fit(X, [0.0, 1.0, 0.5, 2.0])
    with pytest.raises(InvalidModelError, match="no positive class"):
        draft(regressor, positive_label="1")
