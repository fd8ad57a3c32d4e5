"""The measuring process of ``isolation.run_isolated``: ``python -m gluon_modern_cnn.bench.worker``.

Reads a task as JSON on stdin, reports progress on stderr and prints its records as a JSON list on
the last line of stdout. Kept out of the package's imports, so that ``-m`` imports it only once.
"""
from __future__ import annotations

import json
import sys


def main() -> int:
    request = json.loads(sys.stdin.read())
    from gluon_modern_cnn.bench.harness import (BenchConfig, measure_memory, run_benchmarks,
                                                 run_peak)
    from gluon_modern_cnn.bench.profile import profile_operators

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    task, run_id = request["task"], request["run_id"]
    configs = [BenchConfig.from_dict(c) for c in request["configs"]]
    try:
        if task == "peak":
            records = [run_peak(device=request["device"], run_id=run_id)]
        elif task == "memory":
            records = [measure_memory(configs[0], run_id=run_id)]
        elif task == "profile":
            records = [profile_operators(configs[0], run_id=run_id)]
        else:
            records = run_benchmarks(configs, measure_peak=request["measure_peak"],
                                     run_id=run_id, progress=progress)
    except (ValueError, FileNotFoundError) as err:  # a problem the user can fix: no traceback
        print(json.dumps({"error": str(err), "type": type(err).__name__}), flush=True)
        return 2
    print(json.dumps(records), flush=True)
    return 0


if __name__ == "__main__":
    import gluon_modern_cnn  # noqa: F401  (numpy aliases, set_np for this process's main thread)
    sys.exit(main())
