"""Choosing the device: the book's ``num_gpus``, ``try_gpu`` and ``try_all_gpus``, the command line's
``--device``, and telling the user when a GPU is present but unusable.

They hand out only the GPUs :func:`.probes.usable_gpus` found usable and never print or warn:
the book evaluates ``device=try_gpu()`` as a default argument when a module is imported. The
explanation is shown once per process by :func:`warn_if_gpu_unusable`, which the training and
benchmark loops call when they start, and on demand by :func:`describe_devices`.
"""
from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING, Sequence, Union

from ..compat import import_mxnet, threads_setting
from . import probes

if TYPE_CHECKING:
    from mxnet.context import Context

__all__ = ["num_gpus", "try_gpu", "try_all_gpus", "warn_if_gpu_unusable", "describe_devices",
           "parse_devices", "device_spec", "as_contexts", "resolve_devices",
           "GPUFallbackWarning"]


class GPUFallbackWarning(RuntimeWarning):
    """A GPU is present but the installed MXNet cannot use it, so the CPU is used instead."""


_warned = False   # whether warn_if_gpu_unusable has warned in this process


def _forget_probes() -> None:
    """Drop every cached probe result and the warned-once flag (for tests)."""
    global _warned
    probes.clear_caches()
    _warned = False


# ---------------------------------------------------------------------------------------------------
# The book's functions
# ---------------------------------------------------------------------------------------------------

def num_gpus() -> int:
    """Number of GPUs the installed MXNet can run on (section 5.6's ``npx.num_gpus()``, checked)."""
    return len(probes.usable_gpus())


def try_gpu(i: int = 0) -> Context:
    """Return ``gpu(i)`` if it exists, otherwise ``cpu()`` (section 5.6).

    "Exists" means the installed MXNet can run on it: ``try_gpu(i)`` is the i-th usable GPU, which is
    ``gpu(i)`` whenever all GPUs are usable. Silent; see :func:`warn_if_gpu_unusable`.
    """
    if i < 0:
        raise ValueError(f"try_gpu(i) needs i >= 0, got {i}")
    mx = import_mxnet()
    usable = probes.usable_gpus()
    return mx.gpu(usable[i]) if i < len(usable) else mx.cpu()


def try_all_gpus() -> list[Context]:
    """Return all usable GPUs, or ``[cpu()]`` if there is none (section 5.6)."""
    mx = import_mxnet()
    return [mx.gpu(i) for i in probes.usable_gpus()] or [mx.cpu()]


def warn_if_gpu_unusable() -> str | None:
    """Explain, once per process, why work runs on the CPU although a GPU is present.

    Call it where the fallback starts to cost time: the training and benchmark loops call it when
    they start. Returns the explanation (on every call, for logs) when a GPU exists but none is usable
    by the installed MXNet; else None (with a usable GPU, running on the CPU was a choice). Only the
    first call that finds a problem emits a :class:`GPUFallbackWarning`.
    """
    global _warned
    if probes.usable_gpus():
        return None
    problem = probes.gpu_status().problem
    if problem is not None and not _warned:
        _warned = True
        warnings.warn(problem, GPUFallbackWarning, stacklevel=2)
    return problem


def describe_devices() -> str:
    """A human-readable report of GPUs, driver, MXNet's CUDA support and the verdict, and the
    CPU threads MXNet runs its operators on."""
    return f"{probes.gpu_status().describe()}\nCPU threads: {threads_setting()}"


# ---------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------

_DEVICE = re.compile(r"(cpu|gpu)(?::?(\d+))?")


def parse_devices(spec: str) -> list[Context]:
    """Turn a command-line device spec into MXNet contexts.

    ``cpu``, ``cpu0``, ``gpu0``, ``gpu:1``, a comma-separated list of those (``cpu0,cpu1``: MXNet can
    address several CPU contexts), ``auto`` (``[try_gpu()]``) or ``all`` (``try_all_gpus()``).
    A GPU that does not exist or that the installed MXNet cannot run raises ValueError.
    """
    mx = import_mxnet()
    if not isinstance(spec, str):
        raise TypeError(f"a device spec is a string like 'gpu0' or 'cpu', got {type(spec).__name__}")
    text = spec.strip().lower()
    if not text:
        raise ValueError(f"empty device spec {spec!r}: use cpu, gpu0, auto, all or a list like gpu0,gpu1")
    if text == "auto":
        return [try_gpu()]
    if text == "all":
        return try_all_gpus()
    usable = probes.usable_gpus()
    contexts: list[Context] = []
    for token in (t.strip() for t in text.split(",")):
        match = _DEVICE.fullmatch(token)
        if not match:
            raise ValueError(f"bad device {token!r} in {spec!r}: expected cpu, cpuN, gpuN or gpu:N "
                             "(auto and all stand alone)")
        kind, index = match.group(1), int(match.group(2) or 0)
        if kind == "gpu" and index not in usable:
            raise ValueError(_missing_gpu_message(index, usable))
        context = mx.gpu(index) if kind == "gpu" else mx.cpu(index)
        if context in contexts:
            raise ValueError(f"device {token!r} is listed twice in {spec!r}")
        contexts.append(context)
    return contexts


def device_spec(device: Context) -> str:
    """A context as ``--device`` names it (``cpu0``, ``gpu1``): what :func:`parse_devices` reads
    back, and what checkpoints record.

    Args:
        device: an MXNet context.
    """
    return f"{device.device_type}{device.device_id}"


def as_contexts(device: Union[Context, Sequence[Context]]) -> list[Context]:
    """A context or a non-empty list of them as a list, or a ValueError naming what was given.

    Args:
        device: what ``train_ch6(..., device)`` and the other loops take.
    """
    Context = import_mxnet().Context
    if isinstance(device, Context):
        contexts = [device]
    else:
        try:
            contexts = [] if isinstance(device, (str, bytes)) else list(device)
        except TypeError:  # not iterable
            contexts = []
    if not contexts or not all(isinstance(d, Context) for d in contexts):
        raise ValueError(f"device must be an mx.Context such as mx.cpu() or mx.gpu(0), or a "
                         f"non-empty list of them; got {device!r}")
    return contexts


def resolve_devices(device: Union[str, Context, Sequence[Context], None]) -> list[Context]:
    """The devices of a run, decided once: the run plan, reproduction and resumption go through
    here (the book's loops take contexts only: :func:`as_contexts`).

    Args:
        device: None: the book's ``try_gpu()``; a ``--device`` spec (``cpu``, ``gpu0,gpu1``,
            ``auto``, ``all``; :func:`parse_devices`); or a context or a list of them.
    """
    if device is None:
        return [try_gpu()]
    if isinstance(device, str):
        return parse_devices(device)
    return as_contexts(device)


def _missing_gpu_message(index: int, usable: tuple[int, ...]) -> str:
    available = "Available: cpu, cpu1, ... (any index)" + "".join(f", gpu{i}" for i in usable) + "."
    status = probes.gpu_status()
    if any(g.ordinal == index for g in status.driver.gpus):
        return f"gpu{index} cannot be used. {status.problem or status.verdict} {available}"
    if status.usable:
        return f"gpu{index} does not exist ({status.verdict}). {available}"
    found = "no usable GPU" if status.driver.gpus else "no NVIDIA GPU found"
    return (f"gpu{index} does not exist ({found}); use --device cpu, or auto to take a GPU when "
            f"there is one. {available}")
