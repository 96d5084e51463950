"""Each rig run against the targets of issue 5, and how many runs meet each.

    python3 bench/targets.py bench/results/run-*.json          # every run that has the peers
    python3 bench/targets.py --since 2026-12-06 bench/results/run-*.json

Targets: ours at least 1.5x PostGraphile 5's req/s on Q1-Q3 and 1.2x on M1, and raw's req/s at
most 1.25x ours on every operation. Ratios are taken within a run (the peers of one run share the
machine's state), then counted over runs: single runs on a shared 2-core VM swing by a quarter.
An operation is counted in a run that has `raw`, `pg5` and `ours` for it; `rawrls` (raw under
our RLS) is shown when the run has it. Standard library only, like the rig's own summarize.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import NamedTuple

OPS = ("Q1", "Q2", "Q3", "M1", "Q4")
OVER_PG5 = {"Q1": 1.5, "Q2": 1.5, "Q3": 1.5, "M1": 1.2}  # ours/pg5 at least
RAW_OVER_OURS = 1.25  # raw/ours at most, every op


class Ratios(NamedTuple):
    """One operation in one run: ours/pg5, raw/ours and raw-under-RLS/ours (None if absent)."""

    over_pg5: float
    raw_over: float
    rls_over: float | None

    def met(self, op: str) -> tuple[bool | None, bool]:
        """(ours/pg5 target met, or None where the op has none; raw target met)."""
        pg5 = self.over_pg5 >= OVER_PG5[op] if op in OVER_PG5 else None
        return pg5, self.raw_over <= RAW_OVER_OURS

    def text(self, op: str) -> str:
        parts = [self.over_pg5, self.raw_over] + ([self.rls_over] if self.rls_over else [])
        short = False in self.met(op)
        return " / ".join(f"{r:.2f}x" for r in parts) + (" (short)" if short else "")


def load(path: Path) -> tuple[str, dict[str, Ratios]] | None:
    """A run's start time and each operation's ratios; None if the run lacks a needed peer."""
    run = json.loads(path.read_text())
    rps = {(row["peer"], row["op"]): row["rps"] for row in run["rows"] if row.get("rps")}
    ratios = {}
    for op in OPS:
        ours, pg5, raw = rps.get(("ours", op)), rps.get(("pg5", op)), rps.get(("raw", op))
        if ours and pg5 and raw:
            rls = rps.get(("rawrls", op))
            ratios[op] = Ratios(ours / pg5, raw / ours, rls / ours if rls else None)
    return (run["meta"]["started_utc"], ratios) if ratios else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--since", default="", help="only runs started at or after (ISO)")
    args = parser.parse_args()
    runs = sorted(run for path in args.files if (run := load(path)) and run[0] >= args.since)
    if not runs:
        raise SystemExit("no run with raw, pg5 and ours")
    ops = [op for op in OPS if any(op in ratios for _, ratios in runs)]
    print("ours/pg5 / raw/ours (/ raw-under-RLS/ours), by start time (UTC)\n")
    print("| run | " + " | ".join(ops) + " |")
    print("|---|" + "---|" * len(ops))
    for started, ratios in runs:
        cells = [ratios[op].text(op) if op in ratios else "" for op in ops]
        print(f"| {started[:16].replace('T', ' ')} | " + " | ".join(cells) + " |")
    per_op = {op: [ratios[op] for _, ratios in runs if op in ratios] for op in ops}
    medians = [
        f"{statistics.median(r.over_pg5 for r in per_op[op]):.2f}x / "
        f"{statistics.median(r.raw_over for r in per_op[op]):.2f}x"
        for op in ops
    ]
    print("| median | " + " | ".join(medians) + " |")
    print("\nRuns meeting each target:")
    for op in ops:
        met = [r.met(op) for r in per_op[op]]
        of = len(met)
        parts = []
        if op in OVER_PG5:
            parts.append(
                f">= {OVER_PG5[op]}x PostGraphile 5 in {sum(bool(m[0]) for m in met)} of {of}"
            )
        parts.append(f"within {RAW_OVER_OURS}x of raw in {sum(m[1] for m in met)} of {of}")
        print(f"- {op}: " + "; ".join(parts))


if __name__ == "__main__":
    main()
