"""schemas.labels: which labels the feedback contract accepts, and the class each names."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.codec import EncodeError, WrongTypeError
from schemas.contracts import codec_for
from schemas.labels import coerce_feedback, label_class

FEEDBACK = codec_for("feedback")


def feedback_json(label: Any) -> bytes:
    return orjson.dumps({"request_id": "r1", "model": "loan", "label": label, "ts": 1})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "True"),
        (False, "False"),
        ("True", "True"),
        ("true", "True"),
        ("TRUE", "True"),
        ("fAlSe", "False"),
        ("yes", "yes"),
        ("truth", "truth"),
        (1, "1"),
        (0, "0"),
        (-3, "-3"),
        (1.0, "1"),
        (-0.0, "0"),
        ("1.0", "1"),
        ("-3.0", "-3"),
        ("1.00", "1.00"),  # only the text Python writes for a whole double
        ("01", "01"),
        (2.5, "2.5"),
        ("2.5", "2.5"),
        ("cat", "cat"),
        ("", ""),
        (None, None),
    ],
)
def test_class_text(value: object, expected: str | None) -> None:
    assert label_class(value) == expected


def test_one_is_not_true() -> None:
    # 1 is the class a 0/1 model answers ("1"), not the boolean class True
    assert label_class(1) != label_class(True)


@given(st.one_of(st.booleans(), st.integers(), st.floats(allow_nan=False), st.text()))
def test_class_text_is_a_fixed_point(value: object) -> None:
    key = label_class(value)
    assert label_class(key) == key


def test_other_values_are_no_label() -> None:
    with pytest.raises(TypeError, match="expected a label"):
        label_class(["True"])


@pytest.mark.parametrize(("label", "text"), [(True, "True"), (False, "False")])
def test_a_json_boolean_label_is_read_as_its_class_text(label: bool, text: str) -> None:
    assert FEEDBACK.decode_json(feedback_json(label))["label"] == text
    assert FEEDBACK.decode(feedback_json(label), "application/json; charset=utf-8")["label"] == text


@pytest.mark.parametrize(
    ("label", "kept"), [("true", "true"), (1, 1.0), (2.5, 2.5), (None, None), ("cat", "cat")]
)
def test_other_labels_are_kept_as_sent(label: Any, kept: Any) -> None:
    assert FEEDBACK.decode_json(feedback_json(label))["label"] == kept


@pytest.mark.parametrize("label", [{"value": True}, [True], []])
def test_an_object_or_array_label_is_refused(label: Any) -> None:
    with pytest.raises(WrongTypeError) as caught:
        FEEDBACK.decode_json(feedback_json(label))
    assert caught.value.reason == "wrong_type" and caught.value.field == "label"


def test_a_python_producer_may_encode_a_boolean_label() -> None:
    record = {"request_id": "r1", "model": "loan", "label": True, "ts": 1}
    assert FEEDBACK.decode_avro(FEEDBACK.encode_avro(record))["label"] == "True"
    with pytest.raises(EncodeError):
        FEEDBACK.encode_avro(record | {"label": {"value": True}})


def test_the_avro_contract_is_unchanged() -> None:
    # the label union is still null | string | double: Avro producers keep working
    assert FEEDBACK.fingerprint_hex == "aee072e05dbe55ae"


def test_coerce_leaves_other_records_alone() -> None:
    record = {"request_id": "r1", "label": "True"}
    assert coerce_feedback(record) is record
    assert coerce_feedback([True]) == [True]
    original = {"label": True}
    assert coerce_feedback(original) == {"label": "True"} and original == {"label": True}


def test_a_boolean_label_matches_what_a_river_boolean_classifier_logs() -> None:
    """The scorer logs a River model's class True as "True", its probabilities keyed so."""
    from river import linear_model

    from streams.scoring.adapters import adapt

    model = linear_model.LogisticRegression()
    for x, y in [({"a": 1.0}, True), ({"a": -1.0}, False)] * 20:
        model.learn_one(x, y)
    (outcome,) = adapt(model, task="classification", features=["a"]).predict([{"a": 2.0}])
    logged = outcome.as_log(1)
    assert logged["output"] == "True" and set(logged["probabilities"]) == {"True", "False"}
    label = FEEDBACK.decode_json(feedback_json(True))["label"]
    assert label_class(label) == label_class(logged["output"]) == "True"
