"""Where a training step's time goes: MXNet's profiler per operator, forward vs backward.

MXNet groups consecutive operators into bulk segments whose profile entries name several operators
at once; per-operator times need bulk execution off (``MXNET_EXEC_BULK_EXEC_TRAIN=0`` and
``MXNET_EXEC_BULK_EXEC_INFERENCE=0``), which :data:`PROFILE_ENVIRONMENT` holds and the command and
``isolation.run_isolated("profile", ...)`` set for the profiled process.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional

from ..runtime.compat import import_mxnet
from ..checks import check_positive_int
from .harness import BenchConfig, _run_steps, prepare

__all__ = ["OperatorTime", "profile_operators", "phase_of", "PROFILE_ENVIRONMENT",
           "operator_table", "conv_efficiency"]

PROFILE_ENVIRONMENT = {"MXNET_EXEC_BULK_EXEC_TRAIN": "0", "MXNET_EXEC_BULK_EXEC_INFERENCE": "0"}

# Operators that move or wait rather than compute.
_OVERHEAD = ("WaitForVar", "DeleteVariable", "CopyCPU2CPU", "SetValueOp", "_zeros",
             "_zeros_without_dtype", "ResourceParallelRandomSetSeed")


@dataclass(frozen=True)
class OperatorTime:
    """Total time of one operator over the profiled steps."""

    name: str
    phase: str          # forward, backward, update (optimizer), bulk (several fused), overhead
    calls: int
    total_ms: float


def phase_of(name: str) -> str:
    """The part of a training step an operator (profiler entry) belongs to."""
    if "," in name:
        return "bulk"
    # Autograd sums the gradients of a tensor several operators read with add_n.
    if name.startswith("_backward_") or name in ("add_n", "ElementWiseSum"):
        return "backward"
    if name.endswith("_update") or name.startswith(("multi_sgd", "multi_mp_sgd")):
        return "update"
    if name in _OVERHEAD:
        return "overhead"
    return "forward"


def _layer_flops(config: BenchConfig) -> Dict[str, int]:
    """Forward FLOPs per example of the convolutions and the dense layers."""
    from ..tools.flops import layer_costs
    from ..models import get_model, model_info
    mx = import_mxnet()
    info = model_info(config.model)
    with mx.name.NameManager():
        costs = layer_costs(get_model(config.model),
                            (1, info.in_channels, config.input_size, config.input_size))
    return {"conv_forward": sum(c.flops for c in costs if c.kind.startswith("Conv")),
            "dense_forward": sum(c.flops for c in costs if c.kind == "Dense"),
            "total_forward": sum(c.flops for c in costs)}


def profile_operators(config: BenchConfig, *, steps: int = 2,
                      run_id: Optional[str] = None) -> Dict[str, Any]:
    """A ``profile`` record: per-operator times of ``steps`` training steps of ``config`` after its
    warm-up steps, with the convolutions' and dense layers' forward FLOPs per example.

    Run with bulk execution off (see :data:`PROFILE_ENVIRONMENT`) for one entry per operator.
    """
    from .peak import PeakProbe
    from .records import new_record
    mx = import_mxnet()
    check_positive_int(steps, "steps")
    prepared = prepare(config)
    config = prepared.config
    trace = tempfile.NamedTemporaryFile(prefix="gmcnn-profile-", suffix=".json", delete=False)
    trace.close()
    try:
        _run_steps(prepared, config.warmup, first=True)
        mx.npx.waitall()
        mx.profiler.set_config(profile_all=True, aggregate_stats=True, filename=trace.name)
        mx.profiler.set_state("run")
        start = time.perf_counter()
        examples, _, _ = _run_steps(prepared, steps)
        mx.npx.waitall()
        wall = time.perf_counter() - start
        mx.profiler.set_state("stop")
        stats = json.loads(mx.profiler.dumps(reset=True, format="json"))
    finally:
        prepared.close()
        os.unlink(trace.name)
    # The peak as this process reaches it right after the profiled steps, for their efficiency.
    probe = PeakProbe(device=prepared.devices[0])
    for _ in range(3):
        probe.sample()
    operators = [OperatorTime(name, phase_of(name), int(v["Count"]), float(v["Total"]))
                 for name, v in stats["Time"].get("operator", {}).items()]
    operators.sort(key=lambda op: -op.total_ms)
    return new_record("profile", run_id=run_id, config=config.to_dict(), steps=steps,
                      examples=examples, wall_seconds=wall,
                      flops_per_example=_layer_flops(config),
                      bulk_execution=os.environ.get("MXNET_EXEC_BULK_EXEC_TRAIN", "1") != "0",
                      peak=probe.result().to_dict(), operators=[asdict(op) for op in operators])


def operator_table(record: Dict[str, Any], *, top: int = 10) -> List[Dict[str, Any]]:
    """The ``top`` operators of a profile record with their share of the operator time."""
    operators = record["operators"]
    total = sum(op["total_ms"] for op in operators) or 1.0
    return [dict(op, share=op["total_ms"] / total) for op in operators[:top]]


def conv_efficiency(record: Dict[str, Any]) -> Dict[str, float]:
    """Achieved GFLOP/s of the convolutions forward and backward, and the time shares by phase.

    Backward convolution FLOPs are counted as twice the forward (the gradients of the input and of
    the weights), as ``flops.TRAINING_FACTOR`` does for the whole step.
    """
    by_name = {op["name"]: op for op in record["operators"]}
    total = sum(op["total_ms"] for op in record["operators"]) or 1.0
    conv_flops = record["flops_per_example"]["conv_forward"] * record["examples"]
    result: Dict[str, float] = {}
    for key, name, factor in (("conv_forward", "Convolution", 1),
                              ("conv_backward", "_backward_Convolution", 2)):
        op = by_name.get(name)
        if op and op["total_ms"] > 0:
            result[f"{key}_gflops"] = factor * conv_flops / (op["total_ms"] / 1e3) / 1e9
            result[f"{key}_share"] = op["total_ms"] / total
    for phase in ("forward", "backward", "update", "bulk", "overhead"):
        result[f"{phase}_share"] = sum(op["total_ms"] for op in record["operators"]
                                       if op["phase"] == phase) / total
    result["operator_seconds_per_wall_second"] = total / 1e3 / record["wall_seconds"]
    return result
