"""bench/targets.py, whose counts the README quotes: ratios within a run, targets counted right."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "targets.py"


def _run_file(folder: Path, started: str, rps: dict[tuple[str, str], float]) -> Path:
    rows = [{"peer": peer, "op": op, "rps": value} for (peer, op), value in rps.items()]
    path = folder / f"run-{started.replace(':', '')}.json"
    path.write_text(json.dumps({"meta": {"started_utc": started}, "rows": rows}))
    return path


def _targets(*args: object) -> str:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_each_run_is_judged_on_its_own_ratios(tmp_path: Path) -> None:
    # Run 1 meets M1's targets exactly at their edges; run 2 misses both.
    first = _run_file(
        tmp_path,
        "2026-12-01T10:00:00+00:00",
        {("raw", "M1"): 1250, ("pg5", "M1"): 833.3, ("ours", "M1"): 1000},
    )
    second = _run_file(
        tmp_path,
        "2026-12-01T11:00:00+00:00",
        {("raw", "M1"): 1300, ("pg5", "M1"): 900, ("ours", "M1"): 1000},
    )
    out = _targets(first, second)
    assert "| 2026-12-01 10:00 | 1.20x / 1.25x |" in out
    assert "| 2026-12-01 11:00 | 1.11x / 1.30x (short) |" in out
    assert "| median | 1.16x / 1.27x |" in out
    assert "- M1: >= 1.2x PostGraphile 5 in 1 of 2; within 1.25x of raw in 1 of 2" in out


def test_runs_before_since_and_runs_without_the_peers_are_left_out(tmp_path: Path) -> None:
    old = _run_file(
        tmp_path,
        "2026-11-01T10:00:00+00:00",
        {("raw", "Q1"): 100, ("pg5", "Q1"): 100, ("ours", "Q1"): 100},
    )
    no_pg5 = _run_file(
        tmp_path, "2026-12-02T10:00:00+00:00", {("raw", "Q1"): 100, ("ours", "Q1"): 100}
    )
    new = _run_file(
        tmp_path,
        "2026-12-03T10:00:00+00:00",
        {("raw", "Q1"): 100, ("pg5", "Q1"): 50, ("ours", "Q1"): 100, ("rawrls", "Q1"): 90},
    )
    out = _targets("--since", "2026-12", old, no_pg5, new)
    assert "2026-11-01" not in out and "2026-12-02" not in out
    assert "| 2026-12-03 10:00 | 2.00x / 1.00x / 0.90x |" in out
    assert "- Q1: >= 1.5x PostGraphile 5 in 1 of 1; within 1.25x of raw in 1 of 1" in out
