#!/usr/bin/env python
"""Per-step overhead levers on the LeNets' fast path, measured side by side.

Each lever is an MXNet environment setting, so every configuration runs in a fresh process (MXNet
reads them at start-up), interleaved round by round with the baseline; a lever's effect is the
median of its per-round ratios to the baseline of the same round.

    python benchmarks/overhead.py                   # 3 rounds, both LeNets, batch 256, 1 thread
    python benchmarks/overhead.py --rounds 5 --threads 2
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "overhead.jsonl"

#: name -> environment. The optimizer's aggregation makes SGD update all of a model's parameters
#: with one fused multi_sgd operator per group of that many (MXNet's default is 4); bulk
#: execution runs up to that many operators of the hybridized graph as one engine task.
LEVERS = {
    "baseline": {},
    "multi_sgd (aggregate 45)": {"MXNET_OPTIMIZER_AGGREGATION_SIZE": "45"},
    "bulk 1000 nodes": {"MXNET_EXEC_BULK_EXEC_MAX_NODE_TRAIN_FWD": "1000",
                        "MXNET_EXEC_BULK_EXEC_MAX_NODE_TRAIN_BWD": "1000"},
    "both": {"MXNET_OPTIMIZER_AGGREGATION_SIZE": "45",
             "MXNET_EXEC_BULK_EXEC_MAX_NODE_TRAIN_FWD": "1000",
             "MXNET_EXEC_BULK_EXEC_MAX_NODE_TRAIN_BWD": "1000"},
}


def main(argv=None) -> int:
    import gluon_modern_cnn  # noqa: F401
    from gluon_modern_cnn.bench import fast_config, run_isolated
    from gluon_modern_cnn.bench.records import append_records, new_run_id
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lenet_bn_hybrid",
                                                        "lenet_bn_scratch_hybrid"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    run_id = new_run_id()
    rates = {}
    for round_ in range(args.rounds):
        for model in args.models:
            for name, env in LEVERS.items():
                config = fast_config(model, data="synthetic", label=name)
                record = run_isolated("train", config, run_id=run_id, measure_peak=False,
                                      env={"OMP_NUM_THREADS": str(args.threads), **env},
                                      echo=False)
                append_records(args.out, [record])
                rate = record["examples_per_sec"]["step"]["median"]
                rates.setdefault((model, name), []).append(rate)
                print(f"round {round_ + 1}: {model} {name}: {rate:,.0f} examples/sec "
                      f"(load {record['load_average']['before'][0]:.1f})", file=sys.stderr)
    print(f"run {run_id}, {args.threads} thread(s); median of per-round ratios to the baseline")
    for model in args.models:
        base = rates[(model, "baseline")]
        for name in LEVERS:
            ratios = [r / b for r, b in zip(rates[(model, name)], base)]
            print(f"{model:26s} {name:26s} best {max(rates[(model, name)]):8,.0f}  "
                  f"ratio {statistics.median(ratios):.3f}  ({', '.join(f'{x:.2f}' for x in ratios)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
