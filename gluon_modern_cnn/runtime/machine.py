"""A description of the machine a result was measured on, for results files and benchmark records."""
from __future__ import annotations

import os
import platform
from typing import Any, Dict, Optional

import mxnet as mx

__all__ = ["machine_info", "machine_summary", "cpu_model", "cpu_flags", "RELEVANT_ENVIRONMENT"]

#: Environment variables that change MXNet's speed or behaviour, recorded with every result.
RELEVANT_ENVIRONMENT = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT",
                        "MXNET_OMP_MAX_THREADS", "MKL_NUM_THREADS", "MXNET_CPU_WORKER_NTHREADS",
                        "MXNET_ENGINE_TYPE", "MXNET_MKLDNN_ENABLED", "MXNET_USE_OPERATOR_TUNING",
                        "MXNET_EXEC_BULK_EXEC_TRAIN", "MXNET_EXEC_BULK_EXEC_MAX_NODE_TRAIN_FWD",
                        "MXNET_EXEC_BULK_EXEC_MAX_NODE_TRAIN_BWD",
                        "MXNET_OPTIMIZER_AGGREGATION_SIZE", "MXNET_CUDNN_AUTOTUNE_DEFAULT",
                        "CUDA_VISIBLE_DEVICES", "MXNET_HOME", "FASHION_MNIST_ROOT")


def cpu_model() -> str:
    """The CPU's model name."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> Optional[frozenset]:
    """The CPU's feature flags as Linux lists them (``avx2``, ``avx512_bf16``, ...), or None
    where they cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def machine_info() -> Dict[str, Any]:
    """CPU model and cores, GPUs, Python/MXNet/numpy versions, MXNet features, relevant variables."""
    import numpy
    from .. import __version__
    from .devices import gpu_status
    flags = cpu_flags() or ()
    return {
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_flags": sorted(f for f in flags if f.startswith(("avx", "amx", "fma"))),
        "gpus": gpu_status().as_dict(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "mxnet": mx.__version__,
        "mxnet_features": sorted(f.name for f in mx.runtime.Features().values() if f.enabled),
        "numpy": numpy.__version__,
        "package": __version__,
        "environment": {k: os.environ[k] for k in RELEVANT_ENVIRONMENT if k in os.environ},
    }


def machine_summary(info: Dict[str, Any] = None) -> str:
    """One line: CPU, cores, GPU verdict, MXNet version."""
    info = info or machine_info()
    return (f"{info['cpu']} ({info['cpu_cores']} cores), MXNet {info['mxnet']}, numpy "
            f"{info['numpy']}, Python {info['python']}")
