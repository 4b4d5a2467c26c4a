"""``modelstream retrain``: retrain a model on its labelled requests, register the
result as its challenger with full provenance.

The settings are read once here. The training data comes from the warehouse, or through
the running sink when it holds the embedded one (``modelstream up``). The registry writer
signs with the same key as ``modelstream models register``
(:func:`services.registry.cli.signer_from`), and the champion is loaded for its holdout
score only when a trusted key signed it (:func:`~services.registry.cli.trust_from`, plus
this writer's own key). A failure prints one line saying what to do next and exits 1
(2 for a bad option).
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from services.clikit import console, friendly_errors, settings_or_exit
from services.lifecycle._errors import RetrainError
from services.lifecycle._policy import PolicyError, parse_duration
from services.lifecycle._retrain import RetrainResult, retrain
from services.registry import Registry, RegistryError, Signer, Trust
from services.registry.cli import signer_from, trust_from
from services.runtime import kafka_config, topics
from services.settings import Settings
from services.sink.reader import open_reader

__all__ = ["parse_params", "retrain_cmd", "window"]

DEFAULT_SINCE = "7d"


def retrain_cmd(
    name: Annotated[str, typer.Argument(help="Model name")],
    trainer: Annotated[
        str,
        typer.Option(help="The trainer, package.module:function taking (DataFrame, params) "
                     "and returning a fitted River or scikit-learn model; e.g. "
                     "services.lifecycle.trainers:river_logistic"),
    ],
    since: Annotated[
        str | None,
        typer.Option(help="Train on the requests logged in this last span (30m, 6h, 7d, 2w); "
                     f"default {DEFAULT_SINCE} when --from is not given"),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Window start, ISO 8601 (UTC unless it says)")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Window end (exclusive), ISO 8601; default now")
    ] = None,
    min_rows: Annotated[
        int, typer.Option(help="Fewest labelled requests to train on", min=2)
    ] = 500,
    holdout: Annotated[
        float, typer.Option(help="Share of the latest requests held out to evaluate on, "
                            "between 0 and 1")
    ] = 0.2,
    param: Annotated[
        list[str] | None, typer.Option(help="Trainer parameter k=v (repeatable)")
    ] = None,
    shadow: Annotated[
        bool, typer.Option("--shadow/--no-shadow",
                           help="Make the new version the challenger (shadow scoring)")
    ] = True,
    actor: Annotated[str, typer.Option(help="Who retrains (default: your user name)")] = "",
) -> None:  # fmt: skip
    """Retrain NAME on its labelled requests and register the result, signed, as its
    challenger: the data's window, rows, fingerprint and SQL, the trainer and its code
    version, the parameters and the holdout metrics against the champion go with it."""
    try:
        window_start, window_end = window(since, start, end, now=datetime.now(UTC))
        params = parse_params(param or [])
        if not 0.0 < holdout < 1.0:
            raise ValueError(f"--holdout must be between 0 and 1, got {holdout}")
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    settings = settings_or_exit()
    with friendly_errors(RetrainError, RegistryError):
        signer = signer_from(settings)
        registry = Registry(kafka_config(settings, client_id="modelstream-retrain"),
                            topics(settings), actor=actor or getpass.getuser(), timeout=20,
                            signer=signer)  # fmt: skip
        with registry, open_reader(settings) as warehouse:
            result = retrain(
                registry, warehouse, name, trainer=trainer, start=window_start,
                end=window_end, min_rows=min_rows, holdout=holdout, params=params,
                trigger={"by": "cli", "actor": registry.actor}, shadow=shadow,
                trust=_trust(settings, signer),
            )  # fmt: skip
    for line in summary(result):
        console.print(line, soft_wrap=True, markup=False, highlight=False)
    print(f"version={result.version.version}")


def _trust(settings: Settings, signer: Signer) -> Trust:
    """The serving processes' trust, plus this writer's own key."""
    trust = trust_from(settings)
    return Trust.of(*trust.keys.values(), signer.public_key,
                    allow_unsigned=trust.allow_unsigned, sources=trust.sources)  # fmt: skip


def window(
    since: str | None, start: str | None, end: str | None, *, now: datetime
) -> tuple[datetime, datetime]:
    """``[start, end)`` from the options: ``--since`` back from ``--to`` (or now), or
    ``--from`` .. ``--to``; times without a zone are UTC.

    >>> now = datetime(2026, 5, 8, tzinfo=UTC)
    >>> [t.isoformat() for t in window("7d", None, None, now=now)]
    ['2026-05-01T00:00:00+00:00', '2026-05-08T00:00:00+00:00']
    >>> [t.isoformat() for t in window(None, "2026-05-01T12:00", "2026-05-02", now=now)]
    ['2026-05-01T12:00:00+00:00', '2026-05-02T00:00:00+00:00']
    >>> window("7d", "2026-05-01", None, now=now)
    Traceback (most recent call last):
    ValueError: give --since or --from, not both
    """
    if since is not None and start is not None:
        raise ValueError("give --since or --from, not both")
    until = now if end is None else _instant("--to", end)
    if start is not None:
        began = _instant("--from", start)
    else:
        try:
            span = parse_duration(since or DEFAULT_SINCE)
        except PolicyError as exc:
            raise ValueError(f"--since: {exc}") from None
        began = until - timedelta(seconds=span)
    if not began < until:
        raise ValueError(f"the window must start before it ends: {began} .. {until}")
    return began, until


def _instant(option: str, text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{option} {text!r} is not an ISO 8601 time (2026-05-01 or 2026-05-01T12:00:00Z)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_params(items: list[str]) -> dict[str, str]:
    """``--param k=v`` items as a dict (the last of a repeated key wins).

    >>> parse_params(["lr=0.1", "epochs=3", "note=a=b"])
    {'lr': '0.1', 'epochs': '3', 'note': 'a=b'}
    >>> parse_params(["lr"])
    Traceback (most recent call last):
    ValueError: --param 'lr' is not k=v
    """
    params: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param {item!r} is not k=v")
        params[key.strip()] = value
    return params


def summary(result: RetrainResult) -> list[str]:
    """What the command prints: the version, the data, the holdout against the parent."""
    mv, lineage = result.version, result.lineage
    data = lineage["data"]
    role = result.role or "no role: `modelstream models set-challenger` to shadow it"
    return [
        f"registered {mv.name} v{mv.version} ({role}), retrained from champion "
        f"v{result.parent.version} by {lineage['trainer']} (code {lineage['code_version']})",
        f"data: {result.rows} labelled requests, {data['start']} .. {data['end']} "
        f"(train {result.train_rows}, holdout {result.holdout_rows} latest); "
        f"fingerprint {data['fingerprint']}",
        "holdout: " + _versus(result.metrics),
    ]


def _versus(metrics: Mapping[str, float]) -> str:
    """
    >>> _versus({"holdout_accuracy": 0.91, "parent_holdout_accuracy": 0.7,
    ...          "parent_holdout_failed": 0.0})
    'accuracy 0.9100 (champion 0.7000)'
    """
    parts = []
    for key, value in metrics.items():
        if not key.startswith("holdout_"):
            continue
        metric = key.removeprefix("holdout_")
        parent = metrics.get(f"parent_{key}")
        versus = "" if parent is None else f" (champion {parent:.4f})"
        parts.append(f"{metric} {value:.4f}{versus}")
    return ", ".join(parts) or "-"
