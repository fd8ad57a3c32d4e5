#!/usr/bin/env python
"""The peer benchmark: the package (book code, fast path, bfloat16 where the CPU has it) against
PyTorch running the book's own PyTorch cells (fp32, fp32 channels-last, bf16 autocast), side by
side, then the tables and chart in docs/benchmarks.md.

    python3.11 -m venv ../torch-venv && ../torch-venv/bin/pip install torch==2.13.0 numpy
    python benchmarks/peers.py                      # the chapter table, 2 rounds (about 1 hour on 2 cores)
    python benchmarks/peers.py --scaling            # also batch sizes 32..512 and 1, 2 threads
    python benchmarks/peers.py --models lenet_bn resnet18 --rounds 3
    python benchmarks/peers.py --render             # only render the latest run's records
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "peers.jsonl"


def main(argv=None) -> int:
    import gluon_modern_cnn  # noqa: F401
    from gluon_modern_cnn.bench import peers
    from gluon_modern_cnn.bench.records import append_records, read_records
    from gluon_modern_cnn.training.precision import bfloat16_cpu_feature
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(peers.PEER_MODELS),
                        choices=peers.PEER_MODELS, metavar="MODEL")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (best kept)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="OMP_NUM_THREADS / torch threads (default: every processor)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per timed repeat (default: about a second's worth)")
    parser.add_argument("--torch", nargs="*", default=list(peers.TORCH_CONFIGS),
                        choices=peers.TORCH_CONFIGS, help="PyTorch's configurations")
    parser.add_argument("--emulated-bf16", action="store_true",
                        help="measure PyTorch's bf16 autocast on a CPU without bfloat16 "
                             "instructions too (very slow)")
    parser.add_argument("--torch-python", default=None,
                        help=f"PyTorch's interpreter (default ${peers.TORCH_PYTHON_ENV}, else "
                             f"../torch-venv/bin/python)")
    parser.add_argument("--book-dir", type=Path, default=peers.BOOK_DIR,
                        help="the d2l-0.17 Markdown sources with the PyTorch cells")
    parser.add_argument("--scaling", action="store_true",
                        help="also examples/sec against batch size and threads")
    parser.add_argument("--scaling-models", nargs="+", default=["resnet18", "lenet_bn"])
    parser.add_argument("--batch-sizes", default="32,64,128,256,512")
    parser.add_argument("--scaling-threads", default="1,2")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON-lines records (appended)")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--chart", type=Path, default=REPO / "docs" / "peers.png")
    parser.add_argument("--run-id", default=None,
                        help="add these measurements to an earlier run (rendered together)")
    parser.add_argument("--render", action="store_true", help="only render --out's latest run")
    parser.add_argument("--no-render", action="store_true", help="measure without rendering")
    args = parser.parse_args(argv)
    try:
        if not args.render:
            package = ["book", "fast"] + (["fast-bf16"] if bfloat16_cpu_feature() else [])
            if "fast-bf16" not in package:
                print("peers: the package's bfloat16 column is left out: this CPU has neither "
                      "avx512_bf16 nor amx_bf16", file=sys.stderr)
            if "bf16-cl" in args.torch and not bfloat16_cpu_feature() and not args.emulated_bf16:
                args.torch = [c for c in args.torch if c != "bf16-cl"]
                print("peers: PyTorch's bfloat16 column is left out: without avx512_bf16 or "
                      "amx_bf16 PyTorch emulates bfloat16 (AlexNet: about 5 s per example on "
                      "a Zen 2 core); --emulated-bf16 measures it anyway", file=sys.stderr)
            protocol = dict(repeats=args.repeats, steps=args.steps)
            tasks = peers.chapter_tasks(args.models, threads=args.threads, package=package,
                                        torch=args.torch, **protocol)
            if args.scaling:
                ints = lambda text: [int(x) for x in text.split(",") if x]
                tasks += peers.scaling_tasks(args.scaling_models,
                                             batch_sizes=ints(args.batch_sizes),
                                             threads=ints(args.scaling_threads),
                                             torch=[c for c in ("fp32", "fp32-cl")
                                                    if c in args.torch], **protocol)
            peers.run_peers(tasks, rounds=args.rounds, torch=args.torch_python,
                            book_dir=args.book_dir, run_id=args.run_id,
                            on_record=lambda r: append_records(args.out, [r]))
            print(f"records appended to {args.out}")
        if not args.no_render:
            records = read_records(args.out, kind="peer")
            peers.write_peers_report(records, args.doc, args.chart)
            print(f"rendered into {args.doc} and {args.chart}")
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"peers: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
