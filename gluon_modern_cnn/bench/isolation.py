"""Each measurement in a fresh Python process.

A fresh process per configuration makes the resident-set high-water mark (``getrusage``) that
configuration's own peak memory, gives every configuration the same start (no oneDNN primitives or
storage pool left over from the previous one) and lets thread settings, which MXNet and OpenMP read
once at start-up (``OMP_NUM_THREADS``, ``MXNET_CPU_WORKER_NTHREADS``, ...), differ per run.

The child is ``python -m gluon_modern_cnn.bench.worker``: it reads a task as JSON on stdin,
reports progress on stderr and prints its records as a JSON list on the last line of stdout.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .harness import BenchConfig

__all__ = ["run_isolated", "run_side_by_side", "TASKS"]

TASKS = ("train", "memory", "peak", "profile")


def run_isolated(task: str, config: Optional[BenchConfig] = None, *, run_id: Optional[str] = None,
                 env: Optional[Mapping[str, Optional[str]]] = None, measure_peak: bool = True,
                 device: str = "cpu", python: str = sys.executable,
                 timeout: Optional[float] = None, echo: bool = True) -> Dict[str, Any]:
    """Run ``task`` (``train``: ``run_benchmark``, ``memory``: ``measure_memory``, ``peak``:
    ``run_peak``, ``profile``: ``profile.profile_operators`` with bulk execution off) in a fresh
    process and return its record.

    ``env`` sets (or, with ``None``, removes) environment variables of the child only. The child's
    progress lines go to this process's stderr when ``echo``.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}; got {task!r}")
    if task != "peak" and config is None:
        raise ValueError(f"task {task!r} needs a BenchConfig")
    configs = [config] if config is not None else []
    (record,) = _run_child(task, configs, run_id=run_id, env=env, measure_peak=measure_peak,
                           device=device, python=python, timeout=timeout, echo=echo)
    return record


def run_side_by_side(configs: Sequence[BenchConfig], *, run_id: Optional[str] = None,
                     env: Optional[Mapping[str, Optional[str]]] = None, measure_peak: bool = True,
                     python: str = sys.executable, timeout: Optional[float] = None,
                     echo: bool = True) -> List[Dict[str, Any]]:
    """``harness.run_benchmarks(configs)`` in one fresh process; one record per configuration."""
    if not configs:
        raise ValueError("no configurations to measure")
    return _run_child("train", list(configs), run_id=run_id, env=env, measure_peak=measure_peak,
                      device="cpu", python=python, timeout=timeout, echo=echo)


def _run_child(task: str, configs: List[BenchConfig], *, run_id, env, measure_peak, device,
               python, timeout, echo) -> List[Dict[str, Any]]:
    configs = [c.resolved() for c in configs]  # bad settings fail here, not after a start-up
    child_env = dict(os.environ)
    overrides = dict(env or {})
    if task == "profile":
        from .profile import PROFILE_ENVIRONMENT
        overrides.update(PROFILE_ENVIRONMENT)
    for name, value in overrides.items():
        if value is None:
            child_env.pop(name, None)
        else:
            child_env[name] = str(value)
    request = {"task": task, "configs": [c.to_dict() for c in configs], "run_id": run_id,
               "measure_peak": measure_peak, "device": device}
    done = subprocess.run([python, "-m", "gluon_modern_cnn.bench.worker"],
                          input=json.dumps(request), env=child_env, text=True,
                          stdout=subprocess.PIPE, stderr=None if echo else subprocess.PIPE,
                          timeout=timeout)
    lines = done.stdout.strip().splitlines()
    if done.returncode == 2 and lines:
        failure = json.loads(lines[-1])
        error = FileNotFoundError if failure.get("type") == "FileNotFoundError" else ValueError
        raise error(failure["error"])
    if done.returncode != 0 or not lines:
        detail = (done.stderr or "").strip().splitlines()[-5:] if not echo else []
        what = ", ".join(c.model for c in configs) or "the peak"
        raise RuntimeError(f"the {task} measurement of {what} failed in its subprocess (exit "
                           f"status {done.returncode})" + (": " + " | ".join(detail) if detail else
                                                           "; see the messages above"))
    records = json.loads(lines[-1])
    for record in records:
        if "memory" in record:
            record["memory"]["fresh_process"] = True
    return records
