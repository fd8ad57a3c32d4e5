"""Asking the machine: NVIDIA's driver (libcuda, else nvidia-smi, else /proc) and the installed MXNet.

Each probe returns the plain data of :mod:`.decision` and runs at most once per process (cached);
:func:`gpu_status` hands both results to :func:`.decision.assess`. Every caller looks the probes
up as attributes of this module, so this is where tests replace them
(``monkeypatch.setattr(probes, "probe_driver", ...)``), before dropping the cached results with
``devices._forget_probes()``.
"""
from __future__ import annotations

import csv
import ctypes
import functools
import importlib.metadata
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..compat import import_mxnet
from .decision import GPU, DriverProbe, GPUStatus, MXNetProbe, assess
from .wheels import KNOWN_WHEELS

__all__ = ["probe_driver", "probe_mxnet", "gpu_status", "usable_gpus", "clear_caches"]

_LIBCUDA = "libcuda.so.1"
_PROC_NVIDIA = Path("/proc/driver/nvidia")
_NVIDIA_SMI_TIMEOUT = 30.0   # seconds; without persistence mode the first query can take several
_CUDA_ERROR_NO_DEVICE = 100  # cuInit's answer when no GPU is visible (e.g. CUDA_VISIBLE_DEVICES="")
_ATTR_CC_MAJOR, _ATTR_CC_MINOR = 75, 76   # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR


def _load_libcuda() -> Any | None:
    """NVIDIA's driver library, or None when it is not installed (fails in well under a millisecond)."""
    try:
        return ctypes.CDLL(_LIBCUDA)
    except OSError:
        return None


def _proc_driver_version() -> str | None:
    """The kernel module's release from /proc (Linux), e.g. ``535.104.05``; None when absent."""
    try:
        text = (_PROC_NVIDIA / "version").read_text()
    except OSError:
        return None
    match = re.search(r"Kernel Module.*?\s(\d+\.\d+(?:\.\d+)?)\s", text)
    return match.group(1) if match else None


def _probe_libcuda(lib: Any) -> DriverProbe:
    """Ask the CUDA driver API for each GPU's name, compute capability and memory."""
    def error_name(code: int) -> str:
        name = ctypes.c_char_p()
        if hasattr(lib, "cuGetErrorName") and lib.cuGetErrorName(code, ctypes.byref(name)) == 0 \
                and name.value:
            return name.value.decode()
        return f"CUDA error {code}"

    code = lib.cuInit(0)
    if code == _CUDA_ERROR_NO_DEVICE:
        return DriverProbe(source="libcuda")
    if code != 0:
        return DriverProbe(source="libcuda", error=f"cuInit failed: {error_name(code)}")
    version, count = ctypes.c_int(), ctypes.c_int()
    cuda_version = None
    if lib.cuDriverGetVersion(ctypes.byref(version)) == 0:
        cuda_version = (version.value // 1000, version.value % 1000 // 10)
    code = lib.cuDeviceGetCount(ctypes.byref(count))
    if code != 0:
        return DriverProbe(source="libcuda", cuda_version=cuda_version,
                           error=f"cuDeviceGetCount failed: {error_name(code)}")
    gpus = []
    for ordinal in range(count.value):
        device, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        name, memory = ctypes.create_string_buffer(256), ctypes.c_size_t()
        codes = (lib.cuDeviceGet(ctypes.byref(device), ordinal),
                 lib.cuDeviceGetName(name, len(name), device),
                 lib.cuDeviceGetAttribute(ctypes.byref(major), _ATTR_CC_MAJOR, device),
                 lib.cuDeviceGetAttribute(ctypes.byref(minor), _ATTR_CC_MINOR, device))
        failed = next((c for c in codes if c != 0), 0)
        if failed:
            return DriverProbe(tuple(gpus), "libcuda", cuda_version=cuda_version,
                               error=f"querying gpu{ordinal} failed: {error_name(failed)}")
        has_memory = lib.cuDeviceTotalMem_v2(ctypes.byref(memory), device) == 0
        gpus.append(GPU(ordinal, name.value.decode(errors="replace"), (major.value, minor.value),
                        memory.value if has_memory else None))
    return DriverProbe(tuple(gpus), "libcuda", cuda_version=cuda_version)


def _parse_nvidia_smi(text: str) -> tuple[GPU, ...]:
    """Parse ``nvidia-smi --query-gpu=index,name,compute_cap,memory.total --format=csv,noheader,nounits``."""
    gpus = []
    for row in csv.reader(text.splitlines(), skipinitialspace=True):
        if not row:
            continue
        if len(row) != 4:
            raise ValueError(f"unexpected nvidia-smi output line: {','.join(row)!r}")
        index, name, cap, memory = (cell.strip() for cell in row)
        capability = tuple(int(p) for p in cap.split(".")) if re.fullmatch(r"\d+\.\d+", cap) else None
        gpus.append(GPU(int(index), name, capability,  # type: ignore[arg-type]
                        int(float(memory)) * 2**20 if re.fullmatch(r"[\d.]+", memory) else None))
    return tuple(gpus)


def _proc_gpu_names() -> tuple[GPU, ...]:
    """GPU models from /proc/driver/nvidia/gpus (no compute capability there), in PCI bus order."""
    gpus = []
    for ordinal, info in enumerate(sorted((_PROC_NVIDIA / "gpus").glob("*/information"))):
        match = re.search(r"^Model:\s*(.+)$", info.read_text(errors="replace"), re.MULTILINE)
        gpus.append(GPU(ordinal, match.group(1).strip() if match else "unknown NVIDIA GPU"))
    return tuple(gpus)


def _probe_nvidia_smi(smi: str) -> DriverProbe:
    """Ask ``nvidia-smi``; if it fails (e.g. too old for ``compute_cap``), fall back to /proc."""
    command = [smi, "--query-gpu=index,name,compute_cap,memory.total", "--format=csv,noheader,nounits"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_NVIDIA_SMI_TIMEOUT)
        if done.returncode == 0:
            return DriverProbe(_parse_nvidia_smi(done.stdout), "nvidia-smi")
        output = (done.stderr or done.stdout).strip().splitlines()
        error = f"nvidia-smi failed: {output[0] if output else f'exit code {done.returncode}'}"
    except (OSError, subprocess.SubprocessError, ValueError) as err:
        error = f"nvidia-smi failed: {err}"
    gpus = _proc_gpu_names()
    return DriverProbe(gpus, "/proc" if gpus else "none", error=error)


@functools.lru_cache(maxsize=None)
def probe_driver() -> DriverProbe:
    """Ask NVIDIA's driver, not MXNet, which GPUs exist (cached; silent).

    ``libcuda`` is asked first: it numbers GPUs as MXNet does and honours ``CUDA_VISIBLE_DEVICES``.
    Only when it cannot answer and the kernel driver is loaded (``/proc/driver/nvidia``) is
    ``nvidia-smi`` run, so a machine without the NVIDIA driver never starts a subprocess.
    """
    lib = _load_libcuda()
    probe = _probe_libcuda(lib) if lib is not None else DriverProbe()
    if (lib is None or probe.error) and _PROC_NVIDIA.is_dir():
        smi = shutil.which("nvidia-smi")
        fallback = _probe_nvidia_smi(smi) if smi else \
            DriverProbe(_proc_gpu_names(), "/proc", error="nvidia-smi not found")
        error = "; ".join(e for e in (probe.error, fallback.error) if e) or None
        probe = replace(fallback, cuda_version=probe.cuda_version, error=error)
    return replace(probe, driver_version=_proc_driver_version())


def _installed_wheel(cuda: bool) -> str | None:
    """Which known MXNet distribution is installed (the one matching the loaded library's CUDA flag)."""
    found = []
    for name, build in KNOWN_WHEELS.items():
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if (build.cuda is not None) == cuda:
            found.append(name)
    # Several CUDA wheels overwrite each other's files; which one won cannot be told, so say unknown.
    return found[0] if len(found) == 1 else None


@functools.lru_cache(maxsize=None)
def probe_mxnet() -> MXNetProbe:
    """Ask the installed MXNet whether it has CUDA and how many GPUs its runtime sees (cached)."""
    mx = import_mxnet()
    cuda = mx.runtime.Features().is_enabled("CUDA")
    count, error = 0, None
    if cuda:
        try:
            count = mx.context.num_gpus()
        except mx.base.MXNetError as err:   # e.g. a driver/library mismatch after a driver update
            error = str(err).strip().splitlines()[0]
    return MXNetProbe(mx.__version__, _installed_wheel(cuda), cuda, count, error)


@functools.lru_cache(maxsize=None)
def gpu_status() -> GPUStatus:
    """The full GPU situation of this process: both probes and the verdict (cached)."""
    return assess(probe_driver(), probe_mxnet())


@functools.lru_cache(maxsize=None)
def usable_gpus() -> tuple[int, ...]:
    """The ordinals of the GPUs the installed MXNet can run on (cached; silent)."""
    # A CPU build can run on no GPU whatever the hardware, so the driver is not probed for it.
    build = probe_mxnet()
    if not build.cuda or build.num_gpus == 0:
        return ()
    return gpu_status().usable


_CACHED = (probe_driver, probe_mxnet, gpu_status, usable_gpus)


def clear_caches() -> None:
    """Drop every cached probe result, so that the next call probes again (for tests)."""
    for cached in _CACHED:
        cached.cache_clear()
