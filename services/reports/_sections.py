"""Each section of the report: its frames read, its charts drawn, its facts noted.

A section with nothing to draw says why (no label yet, no challenger, no sensitive
attribute, no monitor output) and what would fill it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import pandas as pd

from services.lifecycle import DEFAULT as GATE
from services.reports import _model_queries as mq
from services.reports._charts import Marker, step_label
from services.reports._html import Section
from services.reports._model_charts import (
    bin_labels,
    distribution_figure,
    drift_heatmap,
    fairness_figures,
    performance_figure,
    performance_points,
)
from services.reports._queries import Serving
from services.reports._summary import Facts, fairness_findings
from services.reports._window import Window, step_for
from services.sink.reader import Reader
from streams.monitoring.fairness import DEFAULT_LIMITS
from streams.monitoring.performance import mcnemar

__all__ = ["Scope", "challenger_section", "drift_section", "fairness_section",
           "performance_section"]  # fmt: skip

MAX_DISTRIBUTIONS: Final = 8  # drifted inputs drawn one by one; the heatmap shows them all
PERFORMANCE_POINTS: Final = 24
DRIFT_POINTS: Final = 60  # buckets of the window summaries when the monitor wrote no metric


@dataclass(frozen=True)
class Scope:
    """What every section reads: where, which model, when, and the versions serving."""

    reader: Reader
    model: str
    window: Window
    served: Serving
    found: Sequence[Marker]
    events: pd.DataFrame
    open_drift: Sequence[str]  # inputs with a drift alert still firing

    @property
    def champion(self) -> str:
        return self.served.champion

    @property
    def challenger(self) -> str:
        return self.served.challenger

    @property
    def with_sensitive(self) -> int:
        return self.served.with_sensitive


def drift_section(scope: Scope) -> Section:
    title = "Data drift"
    step = step_for(scope.served.active, DRIFT_POINTS)
    frame, source = mq.drift(scope.reader, scope.model, scope.window, step)
    if frame.empty:
        return Section("drift", title, empty="no drift statistic in this window: the monitor "
                       "wrote neither drift metrics nor window summaries with a reference "
                       "profile (is `modelstream run monitor` running, and was the champion "
                       "registered with its training data?)")  # fmt: skip
    methods = sorted(set(frame["method"]))
    method = "psi" if "psi" in methods else methods[0]
    mine = frame[frame["method"] == method]
    drifted = sorted(set(frame.loc[frame["drifted"] > 0, "feature"]) | set(scope.open_drift))
    figures = [drift_heatmap(mine, method, scope.found)]
    figures += _distributions(scope, drifted[:MAX_DISTRIBUTIONS])
    peaks = mine.loc[mine.groupby("feature")["value"].idxmax()]
    worst = peaks.sort_values("value", ascending=False)
    notes = [f"{len(drifted)} of {frame['feature'].nunique()} inputs drifted in the window"
             + (f": {', '.join(drifted)}." if drifted else ".")
             + f" Highest {method}: "
             + ", ".join(f"{r.feature} {r.value:.3g}" for r in worst.head(5).itertuples())
             + f" (methods measured: {', '.join(methods)})."]  # fmt: skip
    if source == "summaries":
        notes.append(f"The monitor wrote no drift metric in this window: PSI is measured on "
                     f"its window summaries per {step_label(step)} against the training "
                     "reference, with the monitor's threshold 0.2.")  # fmt: skip
    if len(drifted) > MAX_DISTRIBUTIONS:
        notes.append(f"Distributions drawn for the first {MAX_DISTRIBUTIONS} drifted inputs.")
    return Section("drift", title, figures, notes=notes)


def _distributions(scope: Scope, features: Sequence[str]) -> list[object]:
    if not features or not scope.champion:
        return []
    refs = mq.references(scope.reader, scope.model, scope.champion)
    if refs.empty:  # a version registered without its training data profile
        return []
    figures: list[object] = []
    for row in refs[refs["feature"].isin(list(features))].itertuples(index=False):
        live = mq.current_distribution(scope.reader, scope.model, scope.window,
                                       scope.champion, str(row.feature), str(row.kind))  # fmt: skip
        if live.empty:  # no live value of this input (all missing)
            continue
        reference = [float(c) for c in row.ref_counts]
        if row.kind == "numeric":
            labels = bin_labels([float(e) for e in row.edges])
            counts = dict(zip(live["bin"].astype(int), live["n"].astype(float), strict=True))
            current = [counts.get(i + 1, 0.0) for i in range(len(labels))]
            x_title = f"{row.feature} (reference histogram bins)"
        else:
            labels = [str(c) for c in row.categories]
            counts = dict(zip(live["category"].astype(str), live["n"].astype(float), strict=True))
            current = [counts.get(label, 0.0) for label in labels]
            x_title = f"{row.feature} (category)"
        figures.append(distribution_figure(str(row.feature), labels, reference, current, x_title))
    return figures


def performance_section(scope: Scope, facts: Facts) -> Section:
    title = "Performance: champion vs challenger"
    kind = mq.label_kind(scope.reader, scope.model, scope.window)
    facts.label_kind = kind
    if not kind:
        return Section("performance", title, empty="no prediction of this window has a label "
                       "yet: labels arrive on the feedback topic and join their prediction by "
                       "request id; this section fills in as they do")  # fmt: skip
    step = step_for(scope.served.active, PERFORMANCE_POINTS)
    points = performance_points(mq.performance(scope.reader, scope.model, scope.window,
                                               step, kind), kind)  # fmt: skip
    labelled = int(points.loc[points["role"] == "champion", "n"].sum())
    note = (f"{labelled} labelled answers of the champion"
            + ("" if scope.challenger else "; no challenger shadowed it in this window")
            + ". Each point is one bucket; the bars are 95 % intervals.")  # fmt: skip
    chart = performance_figure(points, kind, step_label(step), scope.found)
    return Section("performance", title, [chart], notes=[note])


def challenger_section(scope: Scope, facts: Facts) -> Section:
    title = "Paired test: is the challenger different?"
    if not scope.challenger:
        return Section("challenger", title, empty="no challenger shadowed the champion in this "
                       "window: set one with `modelstream models set-challenger`, or let "
                       "`modelstream retrain` register one")  # fmt: skip
    notes = _gate_notes(scope)
    if facts.label_kind != "classification":
        why = (
            "no labelled request yet"
            if not facts.label_kind
            else "the model is a regressor: the gate's paired t-test is in the lifecycle's events"
        )
        return Section("challenger", title, notes=notes, empty=f"no McNemar test: {why}")
    counts = mq.paired_counts(scope.reader, scope.model, scope.window, scope.champion,
                              scope.challenger)  # fmt: skip
    if counts["n"] == 0:
        return Section("challenger", title, notes=notes, empty=(
            f"challenger v{scope.challenger} and champion v{scope.champion} have no labelled "
            "request both answered in this window yet"))  # fmt: skip
    verdict = _mcnemar_verdict(scope, counts)
    if verdict[1]:
        facts.challenger = verdict[1]
    return Section("challenger", title, notes=[verdict[0], *notes])


def _mcnemar_verdict(scope: Scope, counts: dict[str, int]) -> tuple[str, str]:
    """The verdict sentence, and the summary line when the test separates the two."""
    n, b, c = counts["n"], counts["b"], counts["c"]
    p = mcnemar(b, c).p_value
    ours = f"challenger v{scope.challenger} vs champion v{scope.champion}"
    accuracy = (f"accuracy {100 * counts['challenger_hits'] / n:.1f} % vs "
                f"{100 * counts['champion_hits'] / n:.1f} % on {n} paired labels")  # fmt: skip
    test = f"McNemar b={b}, c={c}, p={p:.3g}"
    if p >= GATE.alpha:
        return (
            f"{ours}: {accuracy}; {test} ≥ alpha {GATE.alpha:g}: no significant difference "
            f"yet (the gate waits; it needs {GATE.min_labels} labels by default).",
            "",
        )
    better = c > b
    word, action = ("better", "promote") if better else ("worse", "retire")
    line = (
        f"Challenger v{scope.challenger} is {word} than champion v{scope.champion} "
        f"({accuracy}; {test} < {GATE.alpha:g}): the gate would {action} it"
    )
    return line + ".", line + (" once its other checks pass" if better else "")


def _gate_notes(scope: Scope) -> list[str]:
    gate = scope.events[scope.events["action"].isin(["wait", "promote", "retire", "veto"])]
    if gate.empty:
        return ["The lifecycle gate recorded no decision in this window."]
    last = gate.iloc[-1]
    return [
        f"The gate's latest decision: {last['action']} v{last['version']} at "
        f"{pd.Timestamp(last['ts']):%Y-%m-%d %H:%M} UTC ({last['reason']})."
    ]


def fairness_section(scope: Scope, facts: Facts) -> Section:
    title = "Fairness"
    frame = mq.fairness(scope.reader, scope.model, scope.window)
    if frame.empty:
        why = (
            "the monitor emitted no fairness metric in this window (is `modelstream run "
            "monitor` running?)" if scope.with_sensitive else
            "the predictions of this window carry no sensitive attribute: declare them when "
            "registering the model (`models register --sensitive`)"
        )  # fmt: skip
        return Section("fairness", title, empty=why)
    facts.fairness_gaps = fairness_findings(frame, DEFAULT_LIMITS)
    figures = fairness_figures(frame, DEFAULT_LIMITS, scope.found)
    note = (
        "Per group, the champion's rates per monitor window; gaps are Fairlearn's "
        "differences (and the parity ratio) between groups, dashed lines their limits."
    )
    return Section("fairness", title, figures, notes=[note])
