"""``modelstream models policy | veto | pin | unpin``: a person's say over the lifecycle.

``policy`` sets (or, with no option, shows) the gate and the loop of one model; ``veto``
retires the challenger now; ``pin`` keeps the champion whatever the gate finds (the
gate still records what it would have done), ``unpin`` lets it decide again. Promotion by
hand stays ``models promote``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Annotated, Any

import typer
from rich.console import Console

from services.lifecycle._policy import (
    DEFAULT,
    PolicyError,
    PromotionPolicy,
    loop_switched,
    parse_duration,
)
from services.lifecycle._process import policy_of
from services.registry.cli import open_registry

__all__ = ["add_commands", "describe_policy", "pin", "policy", "unpin", "veto"]

console = Console()
err = Console(stderr=True)

Name = Annotated[str, typer.Argument(help="Model name")]
Reason = Annotated[str, typer.Option(help="Why, for the audit trail")]
Actor = Annotated[str, typer.Option(help="Who makes the change (default: your user name)")]
Duration = Annotated[str | None, typer.Option(help="A duration: 30m, 6h, 1d, 2w")]
Loop = Annotated[bool | None, typer.Option("--loop/--no-loop", help="Retrain on drift alerts")]
Challenger = Annotated[str | None, typer.Argument(help="The challenger (default: the current)")]


def add_commands(models_app: typer.Typer) -> None:
    """Add ``policy``, ``veto``, ``pin`` and ``unpin`` to the ``models`` commands."""
    for name, command in (("policy", policy), ("veto", veto), ("pin", pin), ("unpin", unpin)):
        models_app.command(name)(command)


def describe_policy(stored: Mapping[str, Any] | None) -> str:
    """One line: the values that differ from the defaults, or ``defaults (loop off)``.

    >>> describe_policy(None)
    'defaults (min-labels 2000, alpha 0.01, loop off)'
    >>> describe_policy({"min_labels": 500, "auto_retrain": True, "trainer": "m:f"})
    'min-labels 500, auto-retrain True, trainer m:f (loop on)'
    """
    current = policy_of(stored)
    loop = "loop on" if current.auto_retrain else "loop off"
    if stored is None or current == DEFAULT:
        return f"defaults (min-labels {DEFAULT.min_labels}, alpha {DEFAULT.alpha:g}, {loop})"
    mine, base = current.describe(), DEFAULT.describe()
    changed = [f"{k} {v}" for k, v in mine.items() if base[k] != v and k != "loop-since"]
    return ", ".join(changed) + f" ({loop})"


def policy(
    name: Name,
    min_labels: Annotated[
        int | None, typer.Option(help="Paired labelled requests the gate needs")
    ] = None,
    alpha: Annotated[
        float | None, typer.Option(help="Significance of the paired test")
    ] = None,
    max_fairness_widening: Annotated[
        float | None, typer.Option(help="Largest allowed widening of a fairness gap")
    ] = None,
    max_p99_increase: Annotated[
        float | None, typer.Option(help="Largest allowed relative increase of the p99 latency")
    ] = None,
    p99_slack_ms: Annotated[
        float | None, typer.Option(help="A p99 this close to the champion's always passes (ms)")
    ] = None,
    max_shadow: Duration = None,
    loop: Loop = None,
    trainer: Annotated[
        str | None, typer.Option(help="package.module:function the loop retrains with")
    ] = None,
    retrain_window: Duration = None,
    retrain_min_rows: Annotated[
        int | None, typer.Option(help="Labelled rows a retraining needs")
    ] = None,
    holdout: Annotated[
        float | None, typer.Option(help="Share of the rows held out to evaluate")
    ] = None,
    cooldown: Duration = None,
    retrain_every: Annotated[
        str | None, typer.Option(help="Also retrain on this schedule (a duration, or off)")
    ] = None,
    reason: Reason = "",
    actor: Actor = "",
) -> None:  # fmt: skip
    """Set the promotion policy of NAME (no option: show it). Stored in the registry;
    every `modelstream run lifecycle` applies it from its next tick."""
    try:
        changes: dict[str, Any] = {
            "min_labels": min_labels, "alpha": alpha,
            "max_fairness_widening": max_fairness_widening, "max_p99_increase": max_p99_increase,
            "p99_slack_ms": p99_slack_ms,
            "max_shadow_s": _seconds(max_shadow), "auto_retrain": loop, "trainer": trainer,
            "retrain_window_s": _seconds(retrain_window), "retrain_min_rows": retrain_min_rows,
            "holdout": holdout, "cooldown_s": _seconds(cooldown),
        }  # fmt: skip
        with open_registry(actor) as registry:
            registry.versions(name)  # catches up; an unknown name says so
            current = policy_of(registry.view.policy(name))
            if all(v is None for v in changes.values()) and retrain_every is None:
                _print(name, current)
                return
            updated = current.changed(**changes)
            if retrain_every is not None:
                every = None if retrain_every == "off" else parse_duration(retrain_every)
                updated = replace(updated, retrain_every_s=every)
            updated = loop_switched(current, updated, time.time())
            registry.set_policy(name, _as_dict(updated), reason=reason)
    except PolicyError as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc
    _print(name, updated)


def veto(
    name: Name,
    version: Challenger = None,
    reason: Reason = "",
    actor: Actor = "",
) -> None:  # fmt: skip
    """Retire the challenger of NAME now: it stops shadowing, with a ``veto`` event."""
    from services.registry.cli import parse_version

    with open_registry(actor) as registry:
        routing = registry.routing(name)
        if routing is None or routing.challenger is None:
            err.print(f"[bold red]error:[/] {name} has no challenger to veto", soft_wrap=True)
            raise typer.Exit(1)
        number = routing.challenger if version is None else parse_version(version)
        registry.retire(name, number, reason=reason or "vetoed", action="veto")
    console.print(f"{name} v{number} vetoed: it no longer shadows v{routing.champion}")


def pin(name: Name, reason: Reason = "", actor: Actor = "") -> None:
    """Keep the champion of NAME: the gate records its verdicts but promotes nothing, and
    the loop retrains nothing, until `unpin`."""
    _set_pinned(name, True, reason, actor)


def unpin(name: Name, reason: Reason = "", actor: Actor = "") -> None:
    """Let the gate promote (and the loop retrain) NAME again."""
    _set_pinned(name, False, reason, actor)


def _set_pinned(name: str, pinned: bool, reason: str, actor: str) -> None:
    with open_registry(actor) as registry:
        registry.versions(name)  # catches up; an unknown name says so
        current = policy_of(registry.view.policy(name))
        registry.set_policy(name, _as_dict(current.changed(pinned=pinned)), reason=reason)
    console.print(f"{name}: {'pinned' if pinned else 'unpinned'}")


def _print(name: str, current: PromotionPolicy) -> None:
    console.print(f"[bold]{name}[/] promotion policy")
    for key, value in current.describe().items():
        console.print(f"  {key:<24} {value}", markup=False)


def _seconds(text: str | None) -> float | None:
    return None if text is None else parse_duration(text)


def _as_dict(current: PromotionPolicy) -> dict[str, Any]:
    import orjson

    return dict(orjson.loads(current.to_json()))
