"""``modelstream bench`` end to end on the session broker: every number present, every
request answered, nothing left running. Speed is not asserted (targets live in the bench's
report, never in a timed test): this machine is shared."""

from __future__ import annotations

import io
import json
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from services.bench import BenchConfig, run_bench
from services.settings import Settings
from streams.kafka import KafkaConfig

EVENTS, RATE = 3_000, 500.0


def children_of(pid: int) -> list[str]:
    """Command lines of the live processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("PPid", "").strip() == str(pid) and "Z" not in fields.get("State", ""):
            found.append(cmdline)
    return found


def positive(value: Any) -> bool:
    return isinstance(value, int | float) and value > 0


def ordered(percentiles: dict[str, float]) -> bool:
    return 0 < percentiles["p50"] <= percentiles["p95"] <= percentiles["p99"] <= percentiles["max"]


def test_quick_bench_reports_every_measurement(kafka: KafkaConfig, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    screen = io.StringIO()
    # --quick, with the fixed phases shortened: this checks the report, not the figures
    quick = BenchConfig.choose(quick=True, events=EVENTS, rate=RATE)
    config = replace(quick, broker_warmup_seconds=3.0, floor_iterations=80, latency_seconds=3.0)
    returned = run_bench(
        Settings(kafka=kafka.bootstrap, topic_partitions=3), quick=True, events=EVENTS,
        rate=RATE, json_path=out, console=Console(file=screen, width=160), config=config,
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert report == json.loads(json.dumps(returned))

    for key in ("passthrough_eps", "passthrough_txn_eps", "scorer_eps", "scorer_sklearn_eps",
                "faust_eps", "scorer_rss_mb", "monitor_eps", "monitor3_eps", "sink_rows_per_s",
                "swap_max_reply_gap_ms"):  # fmt: skip
        assert positive(report[key]) and math.isfinite(report[key]), (key, report[key])
    assert (report["events"], report["offered_rps"]) == (EVENTS, RATE)
    assert ordered(report["latency_ms"]) and ordered(report["txn_floor_ms"])
    assert ordered(report["fast_latency_ms"]), report["counts"]["fast_latency"]
    floor_detail = report["txn_floor_detail_ms"]
    assert set(floor_detail) == {"send_offsets", "commit", "commit_to_read"}
    assert 0 < floor_detail["commit"]["p50"] <= report["txn_floor_ms"]["p50"]
    variants = report["faust_variants"]
    assert set(variants) == {"take", "take-uvloop"}  # --quick; the full run measures all four
    assert all(positive(eps) for eps in variants.values()), variants
    assert report["faust_eps"] == max(variants.values())
    assert variants[report["faust_best_variant"]] == report["faust_eps"]
    assert 0.0 <= report["challenger_coverage"] <= 1.0
    assert all(positive(v) for v in report["ratios"].values()), report["ratios"]
    assert set(report["ratios"]) >= {"latency_p99_vs_floor", "scorer_vs_passthrough_txn",
                                     "scorer_vs_faust", "monitor_vs_scorer",
                                     "monitor3_vs_monitor"}  # fmt: skip
    assert len(report["targets"]) == 11 and "monitor ≥ 1.5x scorer" in report["targets"]
    for name, target in report["targets"].items():
        assert set(target) >= {"target", "measured", "met"}, name
        assert isinstance(target["met"], bool) and target["measured"] is not None, name
    assert "reply_reader_config" in report["method"]["readers"]

    counts = report["counts"]
    assert counts["passthrough"] == {"sent": EVENTS, "forwarded": EVENTS}
    assert counts["passthrough_txn"] == {"sent": EVENTS, "forwarded": EVENTS}
    assert counts["floor"]["measured"] > 0 and counts["floor"]["lost"] == 0
    for phase in ("scorer", "scorer_sklearn"):  # every request, exactly once, by the champion
        scorer = counts[phase]
        assert scorer["replies"] == scorer["unique"] == EVENTS, phase
        served = {k: v for k, v in scorer["served"].items() if k.startswith("served_by:")}
        assert sum(served.values()) == EVENTS and served.get("served_by:champion", 0) > 0
    lat = counts["latency"]
    assert lat["sent"] == lat["replies"] == round(RATE * config.latency_seconds)
    assert 0 < lat["measured"] <= lat["replies"]
    fast = counts["fast_latency"]
    assert fast["sent"] == fast["replies"] == lat["sent"] and fast["measured"] > 0, fast
    # the model's prediction log: throughput, latency and the shadow-impact reference phase
    logged = EVENTS + lat["sent"] + counts["shadow_impact"]["ordinary"]["sent"]
    assert sum(counts["challenger"].values()) == logged
    assert sum(counts["logged"].values()) == logged
    assert all(positive(report["seconds"][k]) for k in ("monitor", "monitor3")), report["seconds"]
    group = counts["monitor3"]  # three instances, a process each, the same records replayed
    assert group["read"] >= group["replayed"] == counts["monitor"]["read"] > 0, group
    assert set(group["instances"]) == {"0", "1", "2"}
    assert all(i["read"] > 0 for i in group["instances"].values()), group  # 3 partitions
    assert counts["challenger"].get("scored", 0) > 0
    coverage = counts["challenger_coverage"]
    assert coverage["logged"] == logged
    assert coverage["covered"] + coverage["missing"] + coverage["sampled_out"] == coverage["logged"]
    timed = round(EVENTS * 0.25)  # each faust variant's share of the requests in --quick
    for name, faust in counts["faust"].items():
        assert faust["timed"] == timed and faust["unique"] >= timed, (name, faust)
        assert ("uvloop" in faust["loop"]) == name.endswith("-uvloop"), (name, faust)
    swap, detail = counts["swap"], report["swap_detail"]  # the champion swap under load
    assert (detail["from_version"], detail["to_version"]) == (1, 2)
    gap = report["swap_gap_ms"]  # from promote() returned; > -promote_call_ms: it was called
    assert isinstance(gap, float) and math.isfinite(gap) and gap + detail["promote_call_ms"] > 0
    assert swap["answered"] == swap["sent"] > 0 and swap["one_switch"]
    assert (swap["duplicates"], swap["errors"]) == (0, 0)
    assert swap["by_version"]["1"] > 0 and swap["by_version"]["2"] > 0
    assert sum(swap["by_version"].values()) == swap["sent"]
    stats = report["scorer_stats"]  # what the scorer itself counted, every phase, every model
    impact = counts["shadow_impact"]  # the same champion, an ordinary and a 50 ms challenger
    assert set(impact) == {"ordinary", "sleepy"}, impact
    assert all(run["sent"] == run["replies"] > 0 for run in impact.values()), impact
    shadow = report["shadow_impact_ms"]
    assert shadow["p99_added"] == shadow["sleepy_p99"] - shadow["ordinary_p99"]
    answered = stats.get("replies", 0) + stats.get("errors", 0)
    sent_to_impact = sum(run["sent"] for run in impact.values())
    assert answered == 2 * EVENTS + lat["sent"] + swap["sent"] + sent_to_impact

    text = screen.getvalue()
    assert "targets" in text and "scorer (champion + challenger, EOS)" in text
    assert "champion swap at 500 req/s" in text
    assert "exactly-once floor" in text and "latency, at-least-once, at 500 req/s" in text
    assert "faust agent, best variant" in text
    assert "monitor, 3 instances (a process each)" in text and "monitor / scorer" in text
    left = [cmd for cmd in children_of(os.getpid()) if "run scorer" in cmd or "faust_app" in cmd]
    assert not left, f"the bench left processes running: {left}"
