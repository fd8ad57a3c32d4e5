#!/usr/bin/env python
"""Render docs/benchmarks.md (the section between its markers) and docs/benchmarks.png from records.

    python benchmarks/report.py        # every model's latest measurement in results/chapter.jsonl
    python benchmarks/report.py results/other.jsonl --run-id 20240101T120000-1a2b
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "chapter.jsonl"


def main(argv=None) -> int:
    import gluon_modern_cnn  # noqa: F401
    from gluon_modern_cnn.bench.records import read_records
    from gluon_modern_cnn.bench.report import write_report
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="*", type=Path, default=[RESULTS],
                        help=f"JSON-lines record files (default {RESULTS.relative_to(REPO)})")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--chart", type=Path, default=REPO / "docs" / "benchmarks.png")
    parser.add_argument("--run-id", help="render only this run (default: every model's latest "
                                         "measurement made with the latest run's settings)")
    args = parser.parse_args(argv)
    try:
        runs = write_report(read_records(*args.results), args.doc, args.chart,
                            run_id=args.run_id)
    except (ValueError, FileNotFoundError) as err:
        print(f"report: error: {err}", file=sys.stderr)
        return 2
    print(f"run(s) {', '.join(runs)} rendered into {args.doc} and {args.chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
