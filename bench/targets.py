"""Each rig run against the targets of issue 5, and how many runs meet each.

    python3 bench/targets.py bench/results/run-*.json          # every run that has the peers
    python3 bench/targets.py --since 2026-12-06 bench/results/run-*.json

Targets: ours at least 1.5x PostGraphile 5's req/s on Q1-Q3 and 1.2x on M1, and raw's req/s at
most 1.25x ours on every operation. Ratios are taken within a run (the peers of one run share the
machine's state), then counted over runs: single runs on a shared 2-core VM swing by a quarter.
Runs without `raw`, `pg5` and `ours` are skipped; `rawrls` (raw under our RLS) is shown when the
run has it. Standard library only, like the rig's own summarize.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

OPS = ("Q1", "Q2", "Q3", "M1", "Q4")
OVER_PG5 = {"Q1": 1.5, "Q2": 1.5, "Q3": 1.5, "M1": 1.2}  # ours/pg5 at least
RAW_OVER_OURS = 1.25  # raw/ours at most, every op


def load(path: Path) -> tuple[str, dict[tuple[str, str], float]] | None:
    run = json.loads(path.read_text())
    rps = {(row["peer"], row["op"]): row["rps"] for row in run["rows"] if row.get("rps")}
    peers = {peer for peer, _ in rps}
    if not {"raw", "pg5", "ours"} <= peers:
        return None
    return run["meta"]["started_utc"], rps


def cell(rps: dict[tuple[str, str], float], op: str) -> tuple[str, list[bool]] | None:
    ours = rps.get(("ours", op))
    if ours is None:
        return None
    text, met = [], []
    if ("pg5", op) in rps:
        ratio = ours / rps["pg5", op]
        text.append(f"{ratio:.2f}x")
        if op in OVER_PG5:
            met.append(ratio >= OVER_PG5[op])
    if ("raw", op) in rps:
        ratio = rps["raw", op] / ours
        text.append(f"{ratio:.2f}x")
        met.append(ratio <= RAW_OVER_OURS)
    if ("rawrls", op) in rps:
        text.append(f"{rps['rawrls', op] / ours:.2f}x")
    return " / ".join(text) + ("" if all(met) else " (short)"), met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--since", default="", help="only runs started at or after (ISO)")
    args = parser.parse_args()
    runs = sorted(run for path in args.files if (run := load(path)) and run[0] >= args.since)
    if not runs:
        raise SystemExit("no run with raw, pg5 and ours")
    ops = [op for op in OPS if any(("ours", op) in rps for _, rps in runs)]
    print("ours/pg5 / raw/ours (/ raw-under-RLS/ours), by start time (UTC)\n")
    print("| run | " + " | ".join(ops) + " |")
    print("|---|" + "---|" * len(ops))
    pg5_met = {op: [0, 0] for op in ops}
    raw_met = {op: [0, 0] for op in ops}
    for started, rps in runs:
        cells = []
        for op in ops:
            got = cell(rps, op)
            cells.append(got[0] if got else "")
            if got is None:
                continue
            ours = rps["ours", op]
            if op in OVER_PG5 and ("pg5", op) in rps:
                pg5_met[op][0] += ours / rps["pg5", op] >= OVER_PG5[op]
                pg5_met[op][1] += 1
            if ("raw", op) in rps:
                raw_met[op][0] += rps["raw", op] / ours <= RAW_OVER_OURS
                raw_met[op][1] += 1
        print(f"| {started[:16].replace('T', ' ')} | " + " | ".join(cells) + " |")
    medians = []
    for op in ops:
        pairs = [
            (rps["ours", op] / rps["pg5", op], rps["raw", op] / rps["ours", op])
            for _, rps in runs
            if {("ours", op), ("pg5", op), ("raw", op)} <= rps.keys()
        ]
        over_pg5 = statistics.median(a for a, _ in pairs)
        raw_over = statistics.median(b for _, b in pairs)
        medians.append(f"{over_pg5:.2f}x / {raw_over:.2f}x")
    print("| median | " + " | ".join(medians) + " |")
    print("\nRuns meeting each target:")
    for op in ops:
        parts = []
        if op in OVER_PG5:
            met, of = pg5_met[op]
            parts.append(f">= {OVER_PG5[op]}x PostGraphile 5 in {met} of {of}")
        met, of = raw_met[op]
        parts.append(f"within {RAW_OVER_OURS}x of raw in {met} of {of}")
        print(f"- {op}: " + "; ".join(parts))


if __name__ == "__main__":
    main()
