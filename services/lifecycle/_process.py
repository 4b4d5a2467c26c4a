"""The lifecycle process: judge every challenger, retrain a drifting champion.

Each tick (``modelstream run lifecycle``, every ``interval`` seconds), per model with a
routing, after catching up with the registry:

- a challenger is judged (:func:`~services.lifecycle._gate.decide` on the
  :func:`~services.lifecycle._evidence.gather` of ClickHouse since it began shadowing):
  ``promote`` and ``retire`` change the routing, with the numbers as the event's details;
  ``wait`` is an event too, written when its reason changes (or hourly), so the trail
  shows why nothing happened without one event per tick;
- with no challenger and the loop on (``auto_retrain``, not ``pinned``), a drift or
  concept-drift alert open on the champion, or a schedule that is due, starts a
  retraining on the labelled requests since the alert's window began (at most the
  retraining window), at most once per cool-down; the new version shadows, and a later
  tick judges it. ``retrain_started`` / ``retrain_failed`` / ``retrain_waiting`` events
  record each step, and the retrained version's lineage names the alerts behind it.

A tick that fails for one model (the registry fences a concurrent writer, ClickHouse is
away) is logged and retried at the next tick; no other model waits for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from services.lifecycle._errors import RetrainError, TooFewRowsError
from services.lifecycle._evidence import gather
from services.lifecycle._gate import Verdict, decide
from services.lifecycle._policy import DEFAULT, PolicyError, PromotionPolicy
from services.lifecycle._retrain import retrain
from services.registry import ModelVersion, Registry, RegistryError, Routing, Trust
from services.sink.reader import Reader
from services.warehouse import WarehouseError

__all__ = ["DriftAlert", "Lifecycle", "Step", "policy_of"]

log = logging.getLogger(__name__)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
WAIT_EVERY: Final = 3600.0  # seconds between two identical ``wait`` events


def policy_of(stored: Mapping[str, Any] | None) -> PromotionPolicy:
    """The policy the registry holds for a model (:data:`DEFAULT` when none, or when the
    stored one no longer validates: logged)."""
    if stored is None:
        return DEFAULT
    try:
        return PromotionPolicy.from_json(_dumps(stored))
    except (PolicyError, TypeError) as exc:
        log.error("ignoring an invalid stored policy (%s): using the defaults", exc)
        return DEFAULT


@dataclass(frozen=True)
class Step:
    """What one tick did for one model: an action and why."""

    model: str
    version: int
    action: str
    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftAlert:
    """A drift or concept-drift alert firing on a champion: what may start a retraining."""

    alert_id: str
    kind: str
    name: str
    feature: str
    window_start: datetime
    at: datetime

    def as_json(self) -> dict[str, str]:
        return {"alert_id": self.alert_id, "kind": self.kind, "name": self.name,
                "feature": self.feature, "window_start": self.window_start.isoformat(),
                "at": self.at.isoformat()}  # fmt: skip


@dataclass
class _Memory:
    """What the process remembers between ticks (lost at restart, which only repeats a
    ``wait`` event and one failed retraining's cool-down)."""

    waits: dict[tuple[str, int], tuple[str, float]] = field(default_factory=dict)
    attempts: dict[str, float] = field(default_factory=dict)


class Lifecycle:
    """Judges challengers and retrains drifting champions, one tick at a time."""

    def __init__(
        self,
        registry: Registry,
        warehouse: Reader,
        *,
        trust: Trust | None = None,
        clock: Callable[[], float] = time.time,
        retrain_fn: Callable[..., Any] = retrain,
    ) -> None:
        """``trust``: what a champion must be signed by to be scored on a retraining's
        holdout (default: the registry's own signing key)."""
        self.registry, self.warehouse, self._trust = registry, warehouse, trust
        self._clock, self._retrain = clock, retrain_fn
        self._memory = _Memory()

    def run(self, stop: threading.Event, interval: float = 30.0,
            on_tick: Callable[[list[Step]], None] | None = None) -> None:  # fmt: skip
        """Tick every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            steps = self.tick()
            if on_tick is not None:
                on_tick(steps)
            stop.wait(interval)

    def tick(self) -> list[Step]:
        """One pass over every model; the steps taken (waits included)."""
        view = self.registry.view
        view.sync(include_pending=True)
        steps: list[Step] = []
        for model in view.models():
            routing = view.routing(model)
            if routing is None:
                continue
            try:
                step = self._model(model, routing, policy_of(view.policy(model)))
            except (RegistryError, WarehouseError, RetrainError, OSError) as exc:
                log.error("lifecycle of %s: %s (trying again next tick)", model, exc)
                continue
            if step is not None:
                steps.append(step)
        return steps

    def _model(self, model: str, routing: Routing, policy: PromotionPolicy) -> Step | None:
        view = self.registry.view
        champion = view.version(model, routing.champion)
        if routing.challenger is not None:
            return self._judge(model, champion, view.version(model, routing.challenger), policy)
        if policy.auto_retrain and not policy.pinned:
            return self._maybe_retrain(model, champion, policy)
        return None

    # -- judging a challenger

    def _judge(self, model: str, champion: ModelVersion, challenger: ModelVersion,
               policy: PromotionPolicy) -> Step | None:  # fmt: skip
        now = self._now()
        since = challenger.created_at - timedelta(minutes=5)
        evidence = gather(self.warehouse, model, champion, challenger, since=since, now=now)
        started = self._shadow_started(model, challenger.version, since) or now
        verdict = decide(policy, evidence, shadow_age_s=(now - started).total_seconds())
        details = {"evidence": evidence.numbers(), "checks": verdict.to_dict()["checks"],
                   "champion": champion.version, "policy": policy.describe()}  # fmt: skip
        version = challenger.version
        if verdict.action == "promote":
            self.registry.promote(model, version, reason=verdict.reason, details=details)
        elif verdict.action == "retire":
            self.registry.retire(model, version, reason=verdict.reason, details=details)
        elif not self._wait_is_news(model, version, verdict):
            return None
        else:
            self.registry.record(model, version, "wait", verdict.reason, details)
        log.info("%s v%d: %s (%s)", model, version, verdict.action, verdict.reason)
        return Step(model, version, verdict.action, verdict.reason, details)

    def _shadow_started(self, model: str, version: int, since: datetime) -> datetime | None:
        """When ``version`` first shadow-scored a request (None before it has)."""
        rows = self.warehouse.query(
            "SELECT count(), min(ts) FROM predictions WHERE model = %(m)s "
            "AND challenger_version = %(v)s AND ts >= %(since)s",
            {"m": model, "v": str(version), "since": since},
        ).rows
        if not rows or not rows[0][0]:
            return None
        return _utc(rows[0][1])

    def _wait_is_news(self, model: str, version: int, verdict: Verdict) -> bool:
        key, now = (model, version), self._clock()
        last = self._memory.waits.get(key)
        if last is not None and last[0] == _gist(verdict.reason) and now - last[1] < WAIT_EVERY:
            return False
        self._memory.waits[key] = (_gist(verdict.reason), now)
        return True

    # -- the loop: retraining a drifting champion

    def _maybe_retrain(self, model: str, champion: ModelVersion,
                       policy: PromotionPolicy) -> Step | None:  # fmt: skip
        now = self._now()
        last = self._last_retrain(model)
        if last is not None and (now - last).total_seconds() < policy.cooldown_s:
            return None
        # an alert older than the last retraining was acted on already, and one older
        # than the loop was not meant for it
        since = max(champion.created_at - timedelta(minutes=5), last or _EPOCH,
                    datetime.fromtimestamp(policy.loop_since or 0, UTC))  # fmt: skip
        alerts = self._drift_alerts(model, champion.version, since)
        trigger: dict[str, Any]
        start = now - timedelta(seconds=policy.retrain_window_s)
        if alerts:
            trigger = {"by": "alert", "alerts": [a.as_json() for a in alerts[:10]]}
            start = max(start, min(a.window_start for a in alerts))
        elif policy.retrain_every_s is not None and (
            last is None or (now - last).total_seconds() >= policy.retrain_every_s
        ):
            trigger = {"by": "schedule", "every": policy.describe()["retrain-every"]}
        else:
            return None
        return self._start_retrain(model, champion, policy, trigger, start, now)

    def _start_retrain(self, model: str, champion: ModelVersion, policy: PromotionPolicy,
                       trigger: dict[str, Any], start: datetime, now: datetime
                       ) -> Step | None:  # fmt: skip
        trainer = policy.trainer or str(champion.lineage.get("trainer") or "")
        window = {"from": start.isoformat(), "to": now.isoformat(), "trainer": trainer}
        try:
            result = self._retrain(
                self.registry, self.warehouse, model, trainer=trainer, start=start, end=now,
                min_rows=policy.retrain_min_rows, holdout=policy.holdout,
                trigger=trigger, shadow=True, trust=self._trust,
            )  # fmt: skip
        except TooFewRowsError as exc:
            # not an attempt: the labels are still coming; tried again next tick
            key = (model, champion.version)
            reason = f"retraining waits for labels: {exc}"
            if self._wait_is_news(model, champion.version, Verdict("wait", reason, {})):
                self.registry.record(model, key[1], "retrain_waiting", reason,
                                     {"trigger": trigger, **window})  # fmt: skip
                return Step(model, champion.version, "retrain_waiting", reason)
            return None
        except RetrainError as exc:
            self._memory.attempts[model] = self._clock()
            self.registry.record(model, champion.version, "retrain_failed", str(exc),
                                 {"trigger": trigger, **window})  # fmt: skip
            log.error("retraining %s failed: %s", model, exc)
            return Step(model, champion.version, "retrain_failed", str(exc))
        self._memory.attempts[model] = self._clock()
        version = _version_of(result)
        reason = (
            f"retrained v{version.version} shadows v{champion.version}: {_trigger_text(trigger)}"
        )
        details = {"trigger": trigger, "new_version": version.version, **window,
                   "training_metrics": dict(version.training_metrics)}  # fmt: skip
        self.registry.record(model, version.version, "retrained", reason, details)
        log.info("%s: %s", model, reason)
        return Step(model, version.version, "retrained", reason, details)

    def _drift_alerts(self, model: str, version: int, since: datetime) -> list[DriftAlert]:
        """Drift and concept-drift alerts raised on the champion ``version`` since
        ``since`` and not resolved (per alert id, its latest state), oldest window first."""
        rows = self.warehouse.query(
            "SELECT alert_id, argMax(kind, ts), argMax(name, ts), argMax(feature, ts), "
            "argMax(window_start, ts), argMax(status, ts) AS status, max(ts) FROM alerts "
            "WHERE model = %(m)s AND kind IN ('drift', 'concept_drift') "
            "AND (model_version = %(v)s OR (model_version = '' AND role IN ('', 'champion'))) "
            "AND ts >= %(since)s GROUP BY alert_id HAVING status = 'firing' "
            "ORDER BY argMax(window_start, ts)",
            {"m": model, "v": str(version), "since": since},
        ).rows  # fmt: skip
        return [DriftAlert(str(r[0]), str(r[1]), str(r[2]), str(r[3]), _utc(r[4]), _utc(r[6]))
                for r in rows]  # fmt: skip

    def _last_retrain(self, model: str) -> datetime | None:
        """When the model was last retrained by the loop (its newest version whose lineage
        says so), or last attempted by this process."""
        times = [mv.created_at for mv in self.registry.view.versions(model)
                 if mv.lineage.get("kind") == "retrain"]  # fmt: skip
        attempted = self._memory.attempts.get(model)
        if attempted is not None:
            times.append(datetime.fromtimestamp(attempted, UTC))
        return max(times) if times else None

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _version_of(result: Any) -> ModelVersion:
    """The registered version of a retrain's result (the result, or its ``version``)."""
    return result if isinstance(result, ModelVersion) else result.version  # type: ignore[no-any-return]


def _trigger_text(trigger: Mapping[str, Any]) -> str:
    if trigger.get("by") == "alert":
        names = sorted({_alert_name(a) for a in trigger.get("alerts", [])})
        return "alert " + ", ".join(names)
    return f"schedule (every {trigger.get('every')})"


def _alert_name(alert: Mapping[str, Any]) -> str:
    """``kind/name on feature``, without what repeats.

    >>> _alert_name({"kind": "drift", "name": "psi", "feature": "x3"})
    'drift/psi on x3'
    >>> _alert_name({"kind": "concept_drift", "name": "concept_drift", "feature": ""})
    'concept_drift'
    """
    kind, name, feature = alert.get("kind", ""), alert.get("name", ""), alert.get("feature", "")
    text = kind if name in ("", kind) else f"{kind}/{name}"
    return f"{text} on {feature}" if feature else text


def _gist(reason: str) -> str:
    """A reason without its numbers: two waits for the same reason are one event.

    >>> _gist("1,204 of 2,000 labelled requests") == _gist("1,310 of 2,000 labelled requests")
    True
    """
    return "".join(ch for ch in reason if not (ch.isdigit() or ch in ".,"))


def _dumps(value: Mapping[str, Any]) -> bytes:
    import orjson

    return orjson.dumps(dict(value))
