"""The README walked as a newcomer walks it: a fresh data dir, a shell without the
virtualenv on its PATH, and every fenced command of the walked sections run in order, as
written. A README change that breaks the walk breaks the build.

Python blocks whose first line is ``# <file>.py`` are written to that file first (the
README asks the reader to save them). ``make test`` is the one command not run: it is
what runs this test. The walk starts its own broker (``make demo`` does, on the fresh
data dir) and ends with ``modelstream down``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from services.demo_model import HTTP_STEPS

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
WALKED = ("Quick start", "Calling a model over HTTP", "Bring your own model")
NOT_RUN = {"make test"}  # the suite this test is part of
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
QUERIES = [
    code for language, code in FENCE.findall((ROOT / "docs" / "queries.md").read_text())
    if language == "sql"
]  # fmt: skip


def headings(text: str) -> list[tuple[int, int, str]]:
    """``(offset, level, title)`` of each Markdown heading outside fenced blocks."""
    found, offset, fenced = [], 0, False
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"(#+) (.*)", line)):
            found.append((offset, len(match.group(1)), match.group(2).strip()))
        offset += len(line)
    return found


def section(text: str, title: str, *, own: bool = False) -> str:
    """The text under the heading ``title`` up to the next heading of the same or a
    higher level (``own``: up to its first sub-heading)."""
    marks = headings(text)
    at = [i for i, (_, _, name) in enumerate(marks) if name == title]
    assert at, f"README.md has no heading {title!r}"
    start, level, _ = marks[at[0]]
    ends = [off for off, lvl, _ in marks[at[0] + 1 :] if own or lvl <= level]
    body = text[start : ends[0] if ends else len(text)]
    return body.split("\n", 1)[1]


def blocks(text: str, title: str) -> list[tuple[str, str]]:
    """``(language, code)`` of each fenced block of the section, in order."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(section(text, title, own=True))]


def commands(code: str) -> list[str]:
    r"""Shell commands of a block: continuation lines joined, a quoted string that spans
    lines kept whole, comments and blanks dropped.

    >>> commands("a \\\n  b  # note\n# c\necho '{\n 1}'\n")
    ['a b', "echo '{\n 1}'"]
    """
    found, pending = [], ""
    for line in re.sub(r"\\\n\s*", "", code).splitlines():
        pending += ("\n" if pending else "") + line
        if open_quote(pending):
            continue
        command = pending.split("  #", 1)[0].strip()
        pending = ""
        if command and not command.startswith("#"):
            found.append(command)
    return found


def open_quote(text: str) -> bool:
    """Whether ``text`` ends inside a '...' or "..." string (bash rules, roughly)."""
    quote = ""
    for char in text:
        if quote and char == quote:
            quote = ""
        elif not quote and char in "'\"":
            quote = char
    return bool(quote)


def script(text: str) -> str:
    """The walk as one bash script."""
    lines = ["set -euo pipefail"]
    for title in WALKED:
        for language, code in blocks(text, title):
            if language == "python":
                name = re.match(r"# (\S+\.py)\b", code)
                assert name, f"{title}: a python block must start with '# <file>.py'"
                lines.append(f"cat > {name.group(1)} <<'PYTHON'\n{code}PYTHON")
                continue
            assert language == "bash", f"{title}: unexpected ```{language} block"
            lines += [c for c in commands(code) if c not in NOT_RUN]
    return "\n".join(lines) + "\n"


def walk_env(data_dir: Path) -> dict[str, str]:
    """A newcomer's shell: no virtualenv on PATH, no MODELSTREAM_* settings but the data
    dir (so the walk never touches the developer's own)."""
    venv_bin = str(ROOT / ".venv" / "bin")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELSTREAM_", "VIRTUAL"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env["MODELSTREAM_DATA_DIR"] = str(data_dir)
    return env


def test_the_readme_is_parsed_as_a_newcomer_reads_it() -> None:
    text = README.read_text()
    quick = [c for _, code in blocks(text, "Quick start") for c in commands(code)]
    assert quick == ["make demo", "make test"], "the quick start is exactly two commands"
    http = [c for _, code in blocks(text, "Calling a model over HTTP") for c in commands(code)]
    # the demo ends by printing these very commands (after the PATH line it adds)
    assert http[0] == "source .venv/bin/activate"
    assert [re.sub(r"\s+", " ", c) for c in http[1:]] == [
        re.sub(r"\s+", " ", c) for c in HTTP_STEPS
    ]
    assert "cat > loan.py <<'PYTHON'" in script(text)


@pytest.mark.slow
def test_the_readme_walks_from_make_demo_to_a_served_curl(tmp_path: Path) -> None:
    work = tmp_path / "newcomer"
    work.mkdir()
    for name in ("Makefile", "pyproject.toml", ".venv"):  # the clone, without copying it
        (work / name).symlink_to(ROOT / name)
    data = tmp_path / "data"
    env = walk_env(data)
    walk = work / "walk.sh"
    walk.write_text(script(README.read_text()))
    modelstream = str(ROOT / ".venv" / "bin" / "modelstream")
    try:
        done = subprocess.run(
            ["bash", str(walk)], cwd=work, env=env, capture_output=True, text=True, timeout=900
        )
        output = done.stdout[-6000:] + "\n--- stderr ---\n" + done.stderr[-6000:]
        assert done.returncode == 0, output
        # docs/queries.md, on the demo's data, through the running sink
        for query in QUERIES:
            asked = subprocess.run([modelstream, "sql", query, "--output", "json"], env=env,
                                   capture_output=True, text=True, timeout=120)  # fmt: skip
            assert asked.returncode == 0, f"{query}\n{asked.stderr}"
            assert isinstance(json.loads(asked.stdout), list)
    finally:
        subprocess.run([modelstream, "down"], cwd=work, env=env, capture_output=True, timeout=120)

    answers = replies(done.stdout)
    assert [a["model"] for a in answers] == ["churn", "loan"], output
    for answer in answers:
        assert answer["served_by"] == "champion" and answer["prediction"] is not None, answer
        assert set(answer["probabilities"]) == {"True", "False"}, answer
    assert "modelstream: command not found" not in done.stderr

    # the demo's closing lines are the next commands, as the README has them
    for step in HTTP_STEPS:
        assert step in done.stdout, f"the demo did not print {step!r}"
    assert f"export MODELSTREAM_DATA_DIR={data}" in done.stdout  # the walk's own data dir

    demo_summary(json.loads((data / "demo.json").read_text()))


def replies(output: str) -> list[dict]:
    """The JSON answers curl printed (curl adds no newline after them)."""
    decoder, found, start = json.JSONDecoder(), [], output.find('{"request_id"')
    while start >= 0:
        answer, end = decoder.raw_decode(output, start)
        found.append(answer)
        start = output.find('{"request_id"', end)
    return found


def demo_summary(summary: dict) -> None:
    """What the default demo (20,000 requests) must have shown."""
    events = summary["events"]
    assert events == 20_000
    assert summary["replies"] + summary["dlq"] == events  # requests in = replies + DLQ
    assert summary["dlq"] > 0  # the demo sends a few malformed requests on purpose
    drift_detected(summary)
    assert {"champion", "challenger"} <= set(summary["performance"])
    assert 0.5 < summary["performance"]["champion"]["accuracy"] <= 1.0
    assert summary["fairness"]["attribute"] == "group"
    assert "demographic_parity_difference" in summary["fairness"]
    assert "equalized_odds_difference" in summary["fairness"]
    gateway = summary["gateway"]
    assert gateway["served"] == 400 + 100 + 10  # predictions, batch minus its bad record, infer
    assert gateway["batch"] == {"count": 101, "succeeded": 100, "failed": 1}
    assert gateway["refused"] == {"unauthenticated": 401, "invalid_input": 422}
    assert gateway["status"]["200"] == 400 + 2
    # everything the scorer answered, over Kafka or HTTP, landed once in the warehouse
    assert summary["warehouse_rows"]["predictions"] == summary["replies"] + gateway["served"]


def drift_detected(summary: dict) -> None:
    """The injected shift (x3 +1 sd from request 10,000) was found soon after it began, by
    its alerts read back from the warehouse, and the nine stable features stayed quiet.
    ``at_event`` counts scored requests (the monitor's events); the demo's input is
    seeded, so every run measured the same: injection at event 9,960, first detection
    (ADWIN) at 10,016, 56 events later; the first windowed one (500 events) at 10,500."""
    injected, half = summary["injected"], summary["events"] // 2
    assert injected["feature"] == "x3" and injected["at_request"] == half
    assert half * 0.98 < injected["at_event"] <= half  # ~0.5% of requests are DLQ'd
    drift = [d for d in summary["detected"] if d["kind"] == "drift" and d["feature"]]
    assert {d["feature"] for d in drift} == {"x3"}, drift  # x0..x9 but x3: no drift alert
    first = min(drift, key=lambda d: d["at_event"])
    delay = first["at_event"] - injected["at_event"]
    # after the injection, within 150 events (ADWIN on a 1 sd shift: 29-74 over 10 seeds,
    # streams/monitoring/change/features.py); a windowed test alone would be 500+ late
    assert 0 < delay <= 150, first
    assert (first["at_event"], delay) == (injected["detected_at_event"], injected["delay_events"])
    # its request: the delay-th shifted one that was scored (a DLQ'd one or two between)
    assert half + delay - 1 <= first["request"] <= half + delay + 4, first
