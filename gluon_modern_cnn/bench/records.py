"""Benchmark records: one JSON object per line, appended, never rewritten.

Every record carries the machine (CPU model, cores, GPUs), the MXNet version and enabled features,
the environment variables that change MXNet's speed, the package version, the time and the run it
belongs to, so that results from several machines and runs can share one file.

Kinds: ``train`` (a measured configuration, from ``harness.run_benchmark``), ``peak`` (the machine's
fp32 peak alone), ``memory`` (peak memory of a few training steps), ``profile`` (operator times),
``peer`` (one configuration of the peer benchmark, the package's or PyTorch's: ``peers``).
"""
from __future__ import annotations

import datetime
import json
import os
import uuid
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Union

__all__ = ["SCHEMA", "KINDS", "new_run_id", "new_record", "validate_record", "append_records",
           "read_records", "benchmark_environment", "ENVIRONMENT_PREFIXES"]

SCHEMA = "gluon-modern-cnn/bench/1"
KINDS = ("train", "peak", "memory", "profile", "peer")

#: Environment variables recorded with every result: everything that tunes MXNet, OpenMP, oneDNN
#: (formerly MKL-DNN) or the BLAS, besides the package's own list in ``machine``.
ENVIRONMENT_PREFIXES = ("MXNET_", "OMP_", "KMP_", "GOMP_", "MKL_", "DNNL_", "MKLDNN_", "ONEDNN_",
                        "OPENBLAS_")

_SUMMARY_FIELDS = {"median": float, "q1": float, "q3": float, "iqr": float, "values": list}
_REQUIRED: Dict[str, Dict[str, Any]] = {
    "": {"schema": str, "kind": str, "run_id": str, "timestamp": str, "machine": dict,
         "environment": dict, "package": str},
    "train": {"config": dict, "flops_per_example": int, "examples_per_sec": dict, "gflops": dict,
              "memory": dict, "load_average": dict, "duration_seconds": float},
    "peak": {"peak": dict, "load_average": dict},
    "memory": {"config": dict, "memory": dict},
    "profile": {"config": dict, "operators": list},
    "peer": {"framework": str, "round": int, "config": dict, "examples_per_sec": dict,
             "versions": dict, "load_average": dict},
}
_PEER_CONFIG_FIELDS = {"model": str, "label": str, "batch_size": int, "input_size": int,
                       "threads": int}
_CONFIG_FIELDS = {"model": str, "label": str, "batch_size": int, "input_size": int, "dtype": str,
                  "data": str, "loader": str, "hybridize": bool, "device": str}


def new_run_id() -> str:
    """A new run identifier: UTC time and a random suffix, e.g. ``20240101T120000-1a2b``."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:4]}"


def benchmark_environment(environ: Mapping[str, str] = os.environ) -> Dict[str, str]:
    """The variables of ``environ`` that can change a benchmark's result."""
    from ..runtime.machine import RELEVANT_ENVIRONMENT
    return {k: v for k, v in sorted(environ.items())
            if k in RELEVANT_ENVIRONMENT or k.startswith(ENVIRONMENT_PREFIXES)}


def new_record(kind: str, *, run_id: str = None, **fields) -> Dict[str, Any]:
    """A record of ``kind``: ``fields`` plus the machine, environment, package version and time."""
    from .. import __version__
    from ..runtime.machine import machine_info
    if kind not in KINDS:
        raise ValueError(f"record kind must be one of {', '.join(KINDS)}; got {kind!r}")
    record = {"schema": SCHEMA, "kind": kind, "run_id": run_id or new_run_id(),
              "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(
                  timespec="seconds"),
              "package": __version__, "machine": machine_info(),
              "environment": benchmark_environment()}
    record.update(fields)
    validate_record(record)
    return record


def _check_fields(data: Mapping[str, Any], required: Mapping[str, Any], where: str) -> None:
    for name, kind in required.items():
        if name not in data:
            raise ValueError(f"{where} lacks the field {name!r}")
        value = data[name]
        # JSON has one number type: an integral float is what an int becomes after a round trip.
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) if kind is float \
            else (isinstance(value, int) and not isinstance(value, bool)) if kind is int \
            else isinstance(value, kind)
        if not ok:
            raise ValueError(f"{where}: field {name!r} must be {kind.__name__}, got "
                             f"{type(value).__name__} {value!r}")


def _check_summary(data: Any, where: str) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a summary object (median, q1, q3, iqr, values); got "
                         f"{data!r}")
    _check_fields(data, _SUMMARY_FIELDS, where)
    if not data["values"]:
        raise ValueError(f"{where} holds no measurements")


def validate_record(record: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the first problem if ``record`` is not a valid record."""
    if not isinstance(record, Mapping):
        raise ValueError(f"a benchmark record is a JSON object; got {type(record).__name__}")
    _check_fields(record, _REQUIRED[""], "record")
    if record["schema"] != SCHEMA:
        raise ValueError(f"record has schema {record['schema']!r}; this version reads {SCHEMA!r}")
    kind = record["kind"]
    if kind not in KINDS:
        raise ValueError(f"record kind must be one of {', '.join(KINDS)}; got {kind!r}")
    _check_fields(record, _REQUIRED[kind], f"{kind} record")
    _check_fields(record["machine"], {"cpu": str, "cpu_cores": int, "mxnet": str,
                                      "mxnet_features": list}, "record machine")
    if "config" in _REQUIRED[kind]:
        _check_fields(record["config"], _PEER_CONFIG_FIELDS if kind == "peer" else _CONFIG_FIELDS,
                      f"{kind} record config")
    if kind == "peer":
        if record["framework"] not in ("mxnet", "pytorch"):
            raise ValueError(f"peer record framework must be mxnet or pytorch; got "
                             f"{record['framework']!r}")
        _check_summary(record["examples_per_sec"], "examples_per_sec")
        _check_fields(record["load_average"], {"before": float, "after": float},
                      "peer record load_average")
    if kind == "train":
        for key in ("step", "end_to_end"):
            _check_summary(record["examples_per_sec"].get(key), f"examples_per_sec.{key}")
        _check_summary(record["gflops"], "gflops")
        _check_fields(record["memory"], {"peak_rss_bytes": int}, "train record memory")
    if kind in ("train", "peak") and record.get("peak") is not None:
        _check_fields(record["peak"], {"gflops": float}, "peak")
        _check_summary(record["peak"].get("conv"), "peak.conv")
        _check_summary(record["peak"].get("matmul"), "peak.matmul")


PathLike = Union[str, "os.PathLike[str]"]


def append_records(path: PathLike, records: Iterable[Mapping[str, Any]]) -> Path:
    """Append ``records`` (validated first, all or none) to the JSON-lines file ``path``.

    Earlier lines are never rewritten; a last line left without its newline (an interrupted
    writer) is terminated first so that the new record starts on a line of its own.
    """
    records = list(records)
    for i, record in enumerate(records):
        try:
            validate_record(record)
        except ValueError as err:
            raise ValueError(f"record {i} not written to {path}: {err}") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    with open(path, "a+b") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                text = "\n" + text
        f.write(text.encode("utf-8"))
    return path


def read_records(*paths: PathLike, kind: str = None) -> List[Dict[str, Any]]:
    """All records of the JSON-lines files ``paths`` in file order (only ``kind`` if given).

    A line that is not a valid record raises ``ValueError`` naming the file and line; blank lines
    are skipped.
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    records = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no benchmark records at {path}; run `python "
                                    f"benchmarks/run_chapter.py` or `gluon-modern-cnn bench` to "
                                    f"create them")
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    validate_record(record)
                except ValueError as err:  # json.JSONDecodeError is a ValueError
                    raise ValueError(f"{path}, line {number}: not a valid benchmark record: "
                                     f"{err}") from None
                if kind is None or record["kind"] == kind:
                    records.append(record)
    return records
