"""The promotion policy: its ranges, its JSON form, durations and its one-line summary."""

from __future__ import annotations

import orjson
import pytest

from services.lifecycle import (
    DEFAULT,
    PolicyError,
    PromotionPolicy,
    describe_policy,
    format_duration,
    parse_duration,
    policy_of,
)


def test_the_json_form_round_trips_and_ignores_fields_a_newer_writer_added() -> None:
    policy = PromotionPolicy(min_labels=300, alpha=0.05, auto_retrain=True, trainer="m:f",
                             retrain_every_s=86400.0)  # fmt: skip
    raw = orjson.loads(policy.to_json()) | {"from_the_future": 1}
    assert PromotionPolicy.from_json(orjson.dumps(raw)) == policy


def test_a_stored_policy_missing_fields_takes_the_defaults_for_them() -> None:
    assert PromotionPolicy.from_json(b'{"min_labels": 50}') == PromotionPolicy(min_labels=50)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"min_labels": 0}, "min-labels must be at least 1"),
        ({"alpha": 1.0}, "alpha must be between 0 and 1"),
        ({"max_fairness_widening": -0.1}, "max-fairness-widening"),
        ({"max_p99_increase": -1.0}, "max-p99-increase"),
        ({"max_shadow_s": 0.0}, "max-shadow must be a positive duration"),
        ({"cooldown_s": float("inf")}, "cooldown must be a positive duration"),
        ({"holdout": 1.0}, "holdout must be between 0 and 1"),
        ({"auto_retrain": True}, "the loop needs a trainer"),
    ],
)
def test_values_out_of_range_are_refused_with_the_flag_to_fix(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(PolicyError, match=message):
        PromotionPolicy(**changes)  # type: ignore[arg-type]


def test_durations_parse_and_print_in_their_largest_whole_unit() -> None:
    assert [parse_duration(t) for t in ("45s", "15m", "6h", "1d", "2w", "1.5h")] == [
        45.0, 900.0, 21600.0, 86400.0, 1209600.0, 5400.0,
    ]  # fmt: skip
    assert [format_duration(s) for s in (45.0, 900.0, 5400.0, 86400.0, 1209600.0)] == [
        "45s", "15m", "90m", "1d", "2w",
    ]  # fmt: skip
    with pytest.raises(PolicyError, match="is not a duration"):
        parse_duration("soon")


def test_an_invalid_stored_policy_falls_back_to_the_defaults() -> None:
    assert policy_of({"alpha": 7}) == DEFAULT
    assert policy_of(None) == DEFAULT


def test_the_summary_names_only_what_differs_from_the_defaults() -> None:
    assert describe_policy({"min_labels": 500}) == "min-labels 500 (loop off)"
    line = describe_policy({"auto_retrain": True, "trainer": "pkg.mod:fit", "cooldown_s": 3600})
    assert line == "auto-retrain True, trainer pkg.mod:fit, cooldown 1h (loop on)"
