#!/usr/bin/env python
"""Benchmark every chapter model: the book's code as written beside the package's fast path.

    python benchmarks/run_chapter.py                 # all chapter models, then docs/benchmarks.md
    python benchmarks/run_chapter.py resnet18 nin    # only these
    python benchmarks/run_chapter.py --env OMP_NUM_THREADS=1 --repeats 7
    python benchmarks/run_chapter.py --max-load 1.0   # first wait for a quiet machine

This is ``gluon-modern-cnn bench --chapter`` with this repository's defaults: records are appended
to ``benchmarks/results/chapter.jsonl``, the real data is read from ``../shared/data/fashion-mnist``
when it is there (else ``$FASHION_MNIST_ROOT`` or MXNet's folder), the conv-heavy models' fast path
is profiled, peak memory is recorded at several batch sizes, every process runs one OpenMP thread
per processor (``OMP_NUM_THREADS``, unless set), and the report is rendered at the end
(``--no-report`` skips it). Every option of ``gluon-modern-cnn bench --help`` applies, and given
options win over these defaults (``--profile-models "" --memory-batch-sizes ""`` for a quick run).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "chapter.jsonl"
SHARED_DATA = REPO.parent / "shared" / "data" / "fashion-mnist"
#: Extra measurements of a full run (cheap enough on a 2-core CPU; override with the options).
PROFILE_MODELS = "alexnet,vgg11_small,nin,googlenet,resnet18,densenet"
MEMORY_BATCH_SIZES = "32,128"


def wait_for_quiet(max_load: float, *, max_wait: float = 3600.0, poll: float = 15.0) -> float:
    """Wait (at most ``max_wait`` seconds) for the 1-minute load average to fall below ``max_load``:
    other processes on the machine slow the measurements down unevenly."""
    start = time.time()
    while os.getloadavg()[0] > max_load and time.time() - start < max_wait:
        time.sleep(poll)
    load = os.getloadavg()[0]
    print(f"run_chapter: load average {load:.2f} after waiting {time.time() - start:.0f} s",
          file=sys.stderr)
    return load


def main(argv=None) -> int:
    import gluon_modern_cnn  # noqa: F401  (numpy aliases and set_np before MXNet is used)
    from gluon_modern_cnn.cli import main as cli
    argv = list(sys.argv[1:] if argv is None else argv)
    report = "--no-report" not in argv
    argv = [a for a in argv if a != "--no-report"]
    if "--max-load" in argv:
        i = argv.index("--max-load")
        try:
            max_load = float(argv[i + 1])
        except (IndexError, ValueError):
            print("run_chapter: error: --max-load needs a number, e.g. --max-load 1.0",
                  file=sys.stderr)
            return 2
        del argv[i:i + 2]
        wait_for_quiet(max_load)
    defaults = ["--chapter", "--out", str(RESULTS), "--profile-models", PROFILE_MODELS,
                "--memory-batch-sizes", MEMORY_BATCH_SIZES]
    if "--data-root" not in argv and not os.environ.get("FASHION_MNIST_ROOT") \
            and SHARED_DATA.is_dir():
        defaults += ["--data-root", str(SHARED_DATA)]
    if "OMP_NUM_THREADS" not in os.environ and not any(a.startswith("OMP_NUM_THREADS=")
                                                       for a in argv):
        # Without it MXNet runs its operators on half the processors (it assumes x86 machines
        # have two hyper-threads per core), which on a machine without SMT leaves cores idle.
        defaults += ["--env", f"OMP_NUM_THREADS={os.cpu_count()}"]
    status = cli(["bench", *defaults, *argv])
    if status == 0 and report:
        status = render([])
    return status


sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import main as render  # noqa: E402  (the sibling script)

if __name__ == "__main__":
    sys.exit(main())
