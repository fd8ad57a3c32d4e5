"""The chapter benchmark: every chapter model, the book's code beside the package's fast path.

One run measures, with the same environment (thread settings), batch size and dtype throughout:
the machine's fp32 peak before and after the timings; for every model, side by side in one fresh
process, the book's code as written end to end, the fast path end to end and the fast path on
synthetic data (computation only); the peak memory of each in a fresh process of its own;
optionally peak memory over several batch sizes and operator profiles. Records are appended to the
results file as soon as they are measured, so an interrupted run keeps what it measured.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

from .harness import BenchConfig, book_config, chapter_models, fast_config
from .isolation import run_isolated, run_side_by_side
from .records import append_records, new_run_id

__all__ = ["VARIANTS", "chapter_configs", "run_suite"]

#: What a chapter run measures per model: (label, preset, data).
VARIANTS = ("book", "fast", "fast-compute")


def chapter_configs(model: str, *, variants: Sequence[str] = VARIANTS,
                    **overrides) -> List[BenchConfig]:
    """The configurations of ``model`` a chapter run measures (``overrides`` go to each)."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(unknown)}; valid: {', '.join(VARIANTS)}")
    configs = []
    for variant in variants:
        if variant == "book":
            configs.append(book_config(model, **overrides))
        elif variant == "fast":
            configs.append(fast_config(model, **overrides))
        else:
            real_only = {"data_root", "prefetch", "num_workers"}
            configs.append(fast_config(model, label="fast-compute", data="synthetic",
                                       loader="fast", **{k: v for k, v in overrides.items()
                                                         if k not in real_only}))
    return configs


def run_suite(out: os.PathLike, *, models: Optional[Iterable[str]] = None,
              variants: Sequence[str] = VARIANTS, env: Optional[Mapping[str, Optional[str]]] = None,
              memory_batch_sizes: Sequence[int] = (), profile_models: Iterable[str] = (),
              run_id: Optional[str] = None, echo: bool = True,
              progress: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True),
              **overrides) -> List[Dict[str, Any]]:
    """Measure ``models`` (default: the chapter's) in one run and append every record to ``out``.

    Per model, ``variants`` are measured side by side in one fresh process (see
    ``harness.run_benchmarks``); the fp32 peak is also measured alone before and after those.
    Then the peak memory of the book's code and of the fast path is recorded, each in a fresh
    process of its own, and of the fast path on synthetic data at ``memory_batch_sizes``;
    ``profile_models`` get operator profiles of their fast path. ``overrides`` (batch_size, steps,
    repeats, dtype, data_root, ...) apply to every configuration; ``env`` to every process.
    Returns the records of this run.
    """
    models = list(models) if models is not None else chapter_models()
    run_id = run_id or new_run_id()
    plan = {model: chapter_configs(model, variants=variants, **overrides) for model in models}
    for configs in plan.values():
        for config in configs:
            config.resolved()  # every setting is checked before the first measurement starts
    profile_models = list(profile_models)
    records: List[Dict[str, Any]] = []

    def keep(*new: Dict[str, Any]) -> None:
        append_records(out, new)
        records.extend(new)

    common = dict(run_id=run_id, env=env, echo=echo)
    # The timings first, back to back, as they are the part that other load disturbs; memory and
    # the profiles' time shares hardly depend on it.
    progress(f"run {run_id}: measuring the fp32 peak")
    keep(run_isolated("peak", **common))
    for i, (model, configs) in enumerate(plan.items(), 1):
        progress(f"run {run_id}: [{i}/{len(plan)}] {model}: "
                 f"{', '.join(c.label for c in configs)} side by side")
        keep(*run_side_by_side(configs, **common))
    progress(f"run {run_id}: measuring the fp32 peak again")
    keep(run_isolated("peak", **common))
    for model, configs in plan.items():
        memory_configs = [c for c in configs if c.label in ("book", "fast")]
        compute = chapter_configs(model, variants=("fast-compute",), **overrides)[0]
        memory_configs += [dataclasses.replace(compute, batch_size=b) for b in memory_batch_sizes]
        for config in memory_configs:
            progress(f"run {run_id}: peak memory of {config.model} ({config.label}, batch size "
                     f"{config.batch_size or 'of the book'})")
            keep(run_isolated("memory", config, **common))
    for model in profile_models:
        config = chapter_configs(model, variants=("fast-compute",), **overrides)[0]
        progress(f"run {run_id}: operator profile of {config.model}")
        keep(run_isolated("profile", config, **common))
    progress(f"run {run_id}: {len(records)} records appended to {Path(out)}")
    return records
