"""``gluon-modern-cnn bench``: measure models from the command line.

``bench MODEL ...`` measures one configuration per model (the flags, or a ``--preset``) in a fresh
process and prints the book's ``examples/sec`` line with the end-to-end figure, GFLOP/s,
utilization and peak memory; ``--out FILE`` appends the records. ``bench --chapter`` runs the
chapter comparison (book code, fast path, compute only) for the given or all chapter models.
"""
from __future__ import annotations

import argparse
from typing import Any, Dict, List

__all__ = ["add_bench_parser", "run_bench", "format_record"]


def _env_pair(text: str):
    name, sep, value = text.partition("=")
    if not sep or not name or any(c.isspace() for c in name):
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. OMP_NUM_THREADS=2), "
                                         f"got {text!r}")
    return name, value


def add_bench_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand to ``subparsers`` (an ``add_subparsers()`` result)."""
    from .harness import DATA_KINDS, DTYPES, LOADERS, MIN_REPEATS, MIN_WARMUP
    p = subparsers.add_parser(
        "bench", help="examples/sec (book formula and end to end), GFLOP/s, utilization, memory",
        description="Measure training throughput as the book reports it (time of the training "
                    "steps only) and end to end (data loading included), the FLOPs per example, "
                    "achieved GFLOP/s against the machine's fp32 peak measured in the same "
                    "process, and peak memory. Each configuration runs in a fresh process.")
    p.add_argument("models", nargs="*", metavar="MODEL",
                   help="registered model names (see `gluon-modern-cnn list`); with --chapter "
                        "default all chapter models")
    p.add_argument("--chapter", action="store_true",
                   help="measure the book's code, the fast path and the fast path's compute-only "
                        "figure per model, plus the fp32 peak, in one run")
    p.add_argument("--preset", choices=("book", "fast"),
                   help="book: the nn.Block model, imperative, the book's data pipeline; fast: the "
                        "hybridized twin (static_alloc, static_shape) with the fast loader")
    p.add_argument("--hybridize", action="store_true", default=None, help="hybridize the model")
    p.add_argument("--static", action="store_true", default=None,
                   help="hybridize with static_alloc=True and static_shape=True")
    p.add_argument("--batch-size", type=int, help="default: the book's for the model")
    p.add_argument("--input-size", type=int, help="default: the book's resize for the model")
    p.add_argument("--lr", type=float, help="default: the book's learning rate")
    p.add_argument("--data", choices=DATA_KINDS,
                   help="synthetic: one random batch in memory (compute only); real: Fashion-MNIST "
                        "through --loader")
    p.add_argument("--loader", choices=LOADERS, help="real data's pipeline (default: book)")
    p.add_argument("--num-workers", type=int, help="the book loader's worker threads")
    p.add_argument("--prefetch", type=int,
                   help="batches the fast loader prepares ahead (default 2)")
    p.add_argument("--dtype", choices=DTYPES, help="parameter and input type (default float32)")
    p.add_argument("--device", help="cpu, gpu0, ... (default cpu)")
    p.add_argument("--warmup", type=int,
                   help=f"untimed warm-up steps (default and minimum {MIN_WARMUP})")
    p.add_argument("--repeats", type=int, help=f"timed repeats (default and minimum {MIN_REPEATS})")
    p.add_argument("--steps", type=int,
                   help="steps per timed repeat (default: enough for a repeat of about a second)")
    p.add_argument("--data-root", help="folder with the Fashion-MNIST files")
    p.add_argument("--env", action="append", type=_env_pair, default=[], metavar="NAME=VALUE",
                   help="environment variable for the measuring processes, e.g. "
                        "OMP_NUM_THREADS=2 (repeatable)")
    p.add_argument("--out", help="append the records to this JSON-lines file (--chapter default: "
                                 "benchmarks/results/chapter.jsonl)")
    p.add_argument("--no-peak", action="store_true", help="skip measuring the fp32 peak")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--memory", action="store_true",
                      help="record peak memory of two training steps instead of timing")
    what.add_argument("--profile", action="store_true",
                      help="record per-operator times (MXNet profiler, bulk execution off)")
    p.add_argument("--memory-batch-sizes", default="",
                   help="with --chapter: also record peak memory at these batch sizes, "
                        "e.g. 32,64,128")
    p.add_argument("--profile-models", default="",
                   help="with --chapter: also profile these models' fast path, "
                        "e.g. alexnet,resnet18")
    p.set_defaults(func=run_bench)
    return p


_FLAG_SETTINGS = ("batch_size", "input_size", "lr", "data", "loader", "num_workers", "prefetch",
                  "dtype", "device", "warmup", "repeats", "steps", "data_root")


def _overrides(args) -> Dict[str, Any]:
    settings = {name: getattr(args, name) for name in _FLAG_SETTINGS
                if getattr(args, name) is not None}
    if args.hybridize:
        settings["hybridize"] = True
    if args.static:
        settings.update(hybridize=True, static_alloc=True, static_shape=True)
    return settings


def _int_list(text: str, what: str) -> List[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"{what} must be comma-separated integers such as 32,64,128; "
                         f"got {text!r}") from None


def format_record(record: Dict[str, Any]) -> str:
    """One line per training record: the book's figure, end to end, GFLOP/s, utilization, memory."""
    c = record["config"]
    step, e2e = record["examples_per_sec"]["step"], record["examples_per_sec"]["end_to_end"]
    line = (f"{c['model']} [{c['label']}, batch {c['batch_size']}, {c['data']} data]: "
            f"{step['median']:.1f} examples/sec on {c['device']} (IQR {step['iqr']:.1f}); end to "
            f"end {e2e['median']:.1f}; {record['gflops']['median']:.1f} GFLOP/s")
    if record.get("utilization") is not None:
        line += f" = {record['utilization']:.0%} of the {record['peak']['gflops']:.0f} GFLOP/s peak"
    return line + f"; peak RSS {record['memory']['peak_rss_bytes'] / 2 ** 20:.0f} MiB"


def _threads_line(env: Dict[str, str]) -> str:
    """The OpenMP threads the measurements run with (the workers inherit this process's setting)."""
    from ..runtime.compat import THREADS_ENV_VAR, threads_setting
    if THREADS_ENV_VAR in env:
        return f"threads: {THREADS_ENV_VAR}={env[THREADS_ENV_VAR]} (--env)"
    return f"threads: {threads_setting()}"


def run_bench(args) -> int:
    """Carry out ``gluon-modern-cnn bench`` for parsed ``args``; returns the exit status."""
    from .harness import BenchConfig, book_config, fast_config
    from .isolation import run_isolated
    from .records import append_records, new_run_id
    env = dict(args.env)
    overrides = _overrides(args)
    print(_threads_line(env))
    if args.chapter:
        from .suite import run_suite
        if args.preset or args.memory or args.profile:
            raise ValueError("--chapter measures its own presets; leave out --preset, --memory "
                             "and --profile (use --memory-batch-sizes / --profile-models)")
        out = args.out or "benchmarks/results/chapter.jsonl"
        records = run_suite(out, models=args.models or None, env=env,
                            memory_batch_sizes=_int_list(args.memory_batch_sizes,
                                                         "--memory-batch-sizes"),
                            profile_models=[m for m in args.profile_models.split(",") if m],
                            **overrides)
        for record in records:
            if record["kind"] == "train":
                print(format_record(record))
        print(f"records appended to {out}; render the report with `python benchmarks/report.py`")
        return 0
    if not args.models:
        raise ValueError("name at least one model (see `gluon-modern-cnn list`), or pass --chapter")
    presets = {"book": book_config, "fast": fast_config}
    configs = [presets[args.preset](m, **overrides) if args.preset
               else BenchConfig(model=m, **overrides) for m in args.models]
    for config in configs:
        config.resolved()  # report every bad setting before the first measurement
    task = "memory" if args.memory else "profile" if args.profile else "train"
    run_id = new_run_id()
    for config in configs:
        record = run_isolated(task, config, run_id=run_id, env=env, measure_peak=not args.no_peak)
        if task == "train":
            print(format_record(record))
        elif task == "memory":
            peak, baseline = (record["memory"][k] / 2 ** 20
                              for k in ("peak_rss_bytes", "baseline_rss_bytes"))
            print(f"{config.model} [batch {record['config']['batch_size']}]: peak RSS "
                  f"{peak:.0f} MiB ({peak - baseline:.0f} MiB over the RSS before the model was "
                  f"built)")
        else:
            from .profile import operator_table
            print(f"{config.model}: operator time per phase and the largest operators")
            for op in operator_table(record):
                print(f"  {op['name'][:60]:60s} {op['phase']:9s} {op['calls']:5d} calls "
                      f"{op['total_ms']:10.1f} ms {op['share']:6.1%}")
        if args.out:
            append_records(args.out, [record])
    if args.out:
        print(f"records appended to {args.out}")
    return 0
