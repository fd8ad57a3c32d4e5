"""Benchmarks: examples/sec as the book reports it and end to end, FLOPs, utilization of the
machine's measured fp32 peak, peak memory, operator profiles, JSON-lines records and a report.

Measure from the command line with ``gluon-modern-cnn bench MODEL`` (see :mod:`.command`), every
chapter model with ``python benchmarks/run_chapter.py``, and render ``docs/benchmarks.md`` with
``python benchmarks/report.py``.

Modules: :mod:`.harness` (configurations and timing), :mod:`.peak` (the fp32 peak),
:mod:`.stats` (median and IQR), :mod:`.records` (JSON lines), :mod:`.isolation` (a fresh process per
measurement), :mod:`.profile` (operator times), :mod:`.suite` (the chapter run), :mod:`.report`
(Markdown and chart), :mod:`.command` (the ``bench`` subcommand).
"""
from .harness import (BenchConfig, Network, Prepared, book_config, build_network, chapter_models,
                      fast_config, measure_memory, prepare, run_benchmark, run_benchmarks,
                      run_peak)
from .isolation import run_isolated, run_side_by_side
from .peak import PeakProbe, PeakResult, measure_peak
from .profile import profile_operators
from .records import append_records, new_record, new_run_id, read_records, validate_record
from .report import write_report
from .stats import Summary, summarize
from .suite import run_suite

__all__ = ["BenchConfig", "Network", "Prepared", "book_config", "fast_config", "chapter_models",
           "build_network", "prepare", "run_benchmark", "run_benchmarks", "measure_memory",
           "run_peak", "run_isolated", "run_side_by_side", "PeakProbe", "PeakResult",
           "measure_peak", "profile_operators", "append_records", "new_record", "new_run_id",
           "read_records", "validate_record", "write_report", "Summary", "summarize", "run_suite"]
