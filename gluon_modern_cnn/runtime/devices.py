"""Devices: the book's ``num_gpus``, ``try_gpu`` and ``try_all_gpus``, and "can this MXNet use this GPU?".

Section 5.6 of the book defines ``try_gpu`` as ``gpu(i)`` if it exists, else ``cpu()``, trusting MXNet's
GPU count. On today's machines that trust fails in two ways this module guards against:

* the CPU-only wheel (``mxnet``) reports zero GPUs even on a GPU machine, so training silently runs on
  the CPU;
* a CUDA wheel reports GPUs it has no code for: ``mxnet-cu112==1.9.1`` contains GPU code for compute
  capability 5.0 to 8.6 and no PTX, so on Hopper (H100/H200, 9.0) and newer the first layer dies with
  "no kernel image is available for execution on the device".

NVIDIA's driver is therefore asked directly (``libcuda`` through ctypes, else ``nvidia-smi``) which GPUs
exist and what their compute capability is, and that is compared with the GPU code the installed wheel
was built with (:data:`KNOWN_WHEELS`). GPUs the wheel cannot run are never handed out: the functions
fall back to ``mx.cpu()``.

When the probes run and when something is shown:

* ``try_gpu()`` and friends never print or warn, because the book evaluates ``device=try_gpu()`` as a
  default argument when a module is imported. On a CPU wheel they do not even probe the driver (the
  answer is the CPU either way); on a CUDA wheel the probe costs what MXNet's own GPU count costs.
  Every probe runs at most once per process; the results are cached.
* :func:`warn_if_gpu_unusable` shows the explanation (GPU name, compute capability, what to install)
  once per process, as a :class:`GPUFallbackWarning`, if a GPU is present and none is usable. The
  training and benchmark loops call it when they start, which is when the fallback starts to cost.
* :func:`describe_devices` / :func:`gpu_status` report the whole situation on demand (CLI, benchmark
  records).
"""
from __future__ import annotations

import csv
import ctypes
import functools
import importlib.metadata
import re
import shutil
import subprocess
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .compat import import_mxnet, threads_setting

if TYPE_CHECKING:
    from mxnet.context import Context

__all__ = ["num_gpus", "try_gpu", "try_all_gpus", "parse_devices", "warn_if_gpu_unusable",
           "describe_devices", "gpu_status", "assess", "probe_driver", "probe_mxnet",
           "GPU", "DriverProbe", "MXNetProbe", "GPUStatus", "WheelBuild", "KNOWN_WHEELS",
           "GPUFallbackWarning"]


class GPUFallbackWarning(RuntimeWarning):
    """A GPU is present but the installed MXNet cannot use it, so the CPU is used instead."""


# ---------------------------------------------------------------------------------------------------
# What each MXNet wheel can run on
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WheelBuild:
    """One published MXNet wheel: the CUDA it was built with and the GPU code (cubins) it contains."""

    name: str
    cuda: tuple[int, int] | None = None              # None: a CPU-only build
    sass: tuple[tuple[int, int], ...] = ()            # compute capabilities compiled for; no PTX
    min_driver_cuda: tuple[int, int] | None = None    # oldest CUDA version the driver must support

    def runs_on(self, capability: tuple[int, int]) -> bool:
        """Whether this build has GPU code for ``capability``.

        A cubin built for X.y runs on X.z for z >= y only; without PTX nothing can be JIT-compiled
        for a newer major version.
        """
        major, minor = capability
        return any(major == m and minor >= n for m, n in self.sass)

    def supported_text(self) -> str:
        """The capabilities this build runs on, for messages: ``compute capability 5.x to 8.x``."""
        majors = sorted({m for m, _ in self.sass})
        lowest = min(self.sass)
        return (f"compute capability {lowest[0]}.{lowest[1]} to {majors[-1]}.x "
                f"(GPU code for {', '.join(f'{m}.{n}' for m, n in self.sass)}; no PTX)")


def _arch(*specs: str) -> tuple[tuple[int, int], ...]:
    return tuple(tuple(int(p) for p in s.split(".")) for s in specs)  # type: ignore[misc]


# Architectures from MXNet's config/distribution/linux_cu*.cmake (MXNET_CUDA_ARCH), which the 1.9.x
# release wheels are built from. CUDA 11 wheels run on any driver for CUDA >= 11.0 (minor-version
# compatibility, driver >= 450.80.02).
KNOWN_WHEELS: dict[str, WheelBuild] = {w.name: w for w in (
    WheelBuild("mxnet"),
    WheelBuild("mxnet-native"),
    WheelBuild("mxnet-cu101", (10, 1), _arch("3.0", "5.0", "6.0", "7.0", "7.5"), (10, 1)),
    WheelBuild("mxnet-cu102", (10, 2), _arch("3.0", "5.0", "6.0", "7.0", "7.5"), (10, 2)),
    WheelBuild("mxnet-cu110", (11, 0), _arch("5.0", "6.0", "7.0", "8.0"), (11, 0)),
    WheelBuild("mxnet-cu112", (11, 2), _arch("5.0", "6.0", "7.0", "8.0", "8.6"), (11, 0)),
)}

# Wheels recommended to users, best first: both have a 1.9.1 release on PyPI, and together they cover
# every capability any 1.9.1 wheel covers (cu112: 5.x-8.x; cu102 adds Kepler 3.x).
_ADVISED_WHEELS = ("mxnet-cu112", "mxnet-cu102")
_ADVISED_VERSION = "1.9.1"


# ---------------------------------------------------------------------------------------------------
# Probe results (plain data, so that the decision logic can be tested with made-up machines)
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GPU:
    """One GPU as NVIDIA's driver reports it; ``ordinal`` is its CUDA device number (MXNet's ``gpu(i)``)."""

    ordinal: int
    name: str
    capability: tuple[int, int] | None = None   # None when the source cannot tell (old nvidia-smi)
    memory_bytes: int | None = None

    def label(self) -> str:
        cap = "unknown" if self.capability is None else "%d.%d" % self.capability
        return f"{self.name} (gpu{self.ordinal}, compute capability {cap})"


@dataclass(frozen=True)
class DriverProbe:
    """What NVIDIA's driver says, independent of MXNet. ``source`` is where it came from."""

    gpus: tuple[GPU, ...] = ()
    source: str = "none"                          # "libcuda", "nvidia-smi", "/proc" or "none"
    driver_version: str | None = None             # the driver release, e.g. "535.104.05"
    cuda_version: tuple[int, int] | None = None   # newest CUDA version the driver supports
    error: str | None = None                      # why a probe failed, if one did


@dataclass(frozen=True)
class MXNetProbe:
    """What the installed MXNet says about itself."""

    version: str
    wheel: str | None      # the installed distribution (a key of KNOWN_WHEELS), None if unknown
    cuda: bool             # built with CUDA (mx.runtime.Features)
    num_gpus: int          # mx.context.num_gpus(); 0 for CPU builds
    error: str | None = None


@dataclass(frozen=True)
class GPUStatus:
    """The verdict: which GPUs MXNet can run on, and (``problem``) why others cannot and what to do."""

    driver: DriverProbe
    mxnet: MXNetProbe
    usable: tuple[int, ...] = ()
    problem: str | None = None

    @property
    def verdict(self) -> str:
        if self.usable:
            return (f"{len(self.usable)} usable GPU{'s' if len(self.usable) > 1 else ''}: "
                    + ", ".join(f"gpu{i}" for i in self.usable))
        if not self.driver.gpus:
            return "no NVIDIA GPU found; using the CPU"
        return "no usable GPU; using the CPU"

    def describe(self) -> str:
        """A human-readable report (for ``gluon-modern-cnn devices`` and logs)."""
        mx, drv = self.mxnet, self.driver
        build = f"{mx.wheel} {mx.version}" if mx.wheel else f"MXNet {mx.version} (wheel unknown)"
        lines = [f"MXNet:  {build}, CUDA {'enabled' if mx.cuda else 'not built in'}"
                 + (f", sees {mx.num_gpus} GPU(s)" if mx.cuda else "")]
        wheel = KNOWN_WHEELS.get(mx.wheel or "")
        if wheel is not None and wheel.cuda:
            lines.append(f"        runs on {wheel.supported_text()}")
        if drv.source == "none" and not drv.error:
            lines.append("Driver: no NVIDIA driver found")
        else:
            cuda = " (supports CUDA %d.%d)" % drv.cuda_version if drv.cuda_version else ""
            how = "could not be queried" if drv.source == "none" else f"queried via {drv.source}"
            lines.append(f"Driver: {drv.driver_version or 'version unknown'}{cuda}, {how}")
        if drv.error:
            lines.append(f"        {drv.error}")
        for gpu in drv.gpus:
            memory = f", {gpu.memory_bytes / 2**30:.1f} GiB" if gpu.memory_bytes else ""
            state = "usable" if gpu.ordinal in self.usable else "NOT usable"
            lines.append(f"GPU:    {gpu.label()}{memory}: {state}")
        lines.append(f"Verdict: {self.verdict}")
        if self.problem:
            lines.append(self.problem)
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable record of the situation (for benchmark results)."""
        return {
            "mxnet": {"version": self.mxnet.version, "wheel": self.mxnet.wheel,
                      "cuda": self.mxnet.cuda, "num_gpus": self.mxnet.num_gpus},
            "driver": {"version": self.driver.driver_version, "source": self.driver.source,
                       "cuda_version": ("%d.%d" % self.driver.cuda_version
                                        if self.driver.cuda_version else None),
                       "error": self.driver.error},
            "gpus": [{"ordinal": g.ordinal, "name": g.name,
                      "compute_capability": "%d.%d" % g.capability if g.capability else None,
                      "memory_bytes": g.memory_bytes, "usable": g.ordinal in self.usable}
                     for g in self.driver.gpus],
            "usable": [f"gpu{i}" for i in self.usable],
            "verdict": self.verdict,
            "problem": self.problem,
        }


# ---------------------------------------------------------------------------------------------------
# The decision (pure: no probing, no output)
# ---------------------------------------------------------------------------------------------------

def _group(gpus: Iterable[GPU]) -> str:
    """``2 x NVIDIA H100 80GB HBM3 (compute capability 9.0)``, one entry per distinct model."""
    counts: dict[tuple[str, Any], int] = {}
    for gpu in gpus:
        counts[(gpu.name, gpu.capability)] = counts.get((gpu.name, gpu.capability), 0) + 1
    return ", ".join(
        f"{n} x {name} (compute capability {'%d.%d' % cap if cap else 'unknown'})"
        for (name, cap), n in counts.items())


def _install_advice(capabilities: Iterable[tuple[int, int] | None], installed: str | None) -> str:
    """What to install for GPUs of these capabilities, or that no MXNet 1.9.1 wheel can run them."""
    # The wheels all install into site-packages/mxnet, so the old one must go first.
    uninstall = f"pip uninstall -y {installed} && " if installed else ""
    advice = []
    for cap in dict.fromkeys(capabilities):   # distinct, in order
        if cap is None:
            advice.append("look up the GPU's compute capability: " + ", ".join(
                f"{name}=={_ADVISED_VERSION} runs on {KNOWN_WHEELS[name].supported_text()}"
                for name in _ADVISED_WHEELS))
            continue
        fitting = [name for name in _ADVISED_WHEELS if KNOWN_WHEELS[name].runs_on(cap)]
        if fitting:
            advice.append(f"for compute capability {cap[0]}.{cap[1]} install {fitting[0]}: "
                          f"{uninstall}pip install {fitting[0]}=={_ADVISED_VERSION}")
        else:
            advice.append(f"no MXNet {_ADVISED_VERSION} wheel has GPU code for compute capability "
                          f"{cap[0]}.{cap[1]}")
    return "; ".join(advice)


def assess(driver: DriverProbe, mxnet: MXNetProbe) -> GPUStatus:
    """Decide which GPUs the installed MXNet can run on, from the two probes' results."""
    gpus = driver.gpus
    if not gpus and mxnet.cuda and mxnet.num_gpus and driver.source == "none":
        # The driver could not be queried, yet MXNet's CUDA runtime sees GPUs: nothing to check
        # them against, so trust MXNet as the book does.
        gpus = tuple(GPU(i, "unknown GPU") for i in range(mxnet.num_gpus))
        driver = replace(driver, gpus=gpus)
    if not gpus:
        return GPUStatus(driver, mxnet)

    installed = f"{mxnet.wheel or 'mxnet'} {mxnet.version}"
    if not mxnet.cuda:
        problem = (f"Found {_group(gpus)}, but the installed MXNet ({installed}) is built without "
                   f"CUDA; {_install_advice((g.capability for g in gpus), mxnet.wheel or 'mxnet')}. "
                   "Using the CPU.")
        return GPUStatus(driver, mxnet, problem=problem)

    wheel = KNOWN_WHEELS.get(mxnet.wheel or "")
    if mxnet.num_gpus == 0:
        need = wheel.min_driver_cuda if wheel else None
        if need and driver.cuda_version and driver.cuda_version < need:
            cause = ("the NVIDIA driver supports CUDA %d.%d, %s needs a driver for CUDA %d.%d or newer: "
                     "update the NVIDIA driver" % (*driver.cuda_version, mxnet.wheel, *need))
        else:
            cause = (mxnet.error or "check the driver installation and CUDA_VISIBLE_DEVICES")
        problem = (f"The NVIDIA driver reports {_group(gpus)}, but the installed MXNet ({installed}) "
                   f"sees no GPU: {cause}. Using the CPU.")
        return GPUStatus(driver, mxnet, problem=problem)

    def runnable(gpu: GPU) -> bool:
        if gpu.ordinal >= mxnet.num_gpus:
            return False
        # An unknown capability or an unknown build (e.g. built from source): trust MXNet.
        return gpu.capability is None or wheel is None or wheel.runs_on(gpu.capability)

    usable = tuple(g.ordinal for g in gpus if runnable(g))
    rejected = [g for g in gpus if not runnable(g)]
    problem = None
    if rejected:
        reason = (f"{wheel.name} {mxnet.version} runs on {wheel.supported_text()} only"
                  if wheel else f"MXNet sees only {mxnet.num_gpus} GPU(s)")
        fallback = ", ".join(f"gpu{i}" for i in usable) + " only" if usable else "the CPU"
        problem = (f"{'; '.join(g.label() for g in rejected)} cannot run the installed MXNet: "
                   f"{reason}; {_install_advice((g.capability for g in rejected), mxnet.wheel)}. "
                   f"Using {fallback}.")
    return GPUStatus(driver, mxnet, usable=usable, problem=problem)


# ---------------------------------------------------------------------------------------------------
# Probes (each runs once per process; tests replace them with made-up results)
# ---------------------------------------------------------------------------------------------------

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
def _usable_gpus() -> tuple[int, ...]:
    # A CPU build can run on no GPU whatever the hardware, so the driver is not probed for it.
    build = probe_mxnet()
    if not build.cuda or build.num_gpus == 0:
        return ()
    return gpu_status().usable


_CACHED = (probe_driver, probe_mxnet, gpu_status, _usable_gpus)
_warned = False   # whether warn_if_gpu_unusable has warned in this process


def _forget_probes() -> None:
    """Drop every cached probe result and the warned-once flag (for tests)."""
    global _warned
    for cached in _CACHED:
        cached.cache_clear()
    _warned = False


# ---------------------------------------------------------------------------------------------------
# The book's functions
# ---------------------------------------------------------------------------------------------------

def num_gpus() -> int:
    """Number of GPUs the installed MXNet can run on (section 5.6's ``npx.num_gpus()``, checked)."""
    return len(_usable_gpus())


def try_gpu(i: int = 0) -> Context:
    """Return ``gpu(i)`` if it exists, otherwise ``cpu()`` (section 5.6).

    "Exists" means the installed MXNet can run on it: ``try_gpu(i)`` is the i-th usable GPU, which is
    ``gpu(i)`` whenever all GPUs are usable. Silent; see :func:`warn_if_gpu_unusable`.
    """
    if i < 0:
        raise ValueError(f"try_gpu(i) needs i >= 0, got {i}")
    mx = import_mxnet()
    usable = _usable_gpus()
    return mx.gpu(usable[i]) if i < len(usable) else mx.cpu()


def try_all_gpus() -> list[Context]:
    """Return all usable GPUs, or ``[cpu()]`` if there is none (section 5.6)."""
    mx = import_mxnet()
    return [mx.gpu(i) for i in _usable_gpus()] or [mx.cpu()]


def warn_if_gpu_unusable() -> str | None:
    """Explain, once per process, why work runs on the CPU although a GPU is present.

    Call it where the fallback starts to cost time: the training and benchmark loops call it when
    they start. Returns the explanation (on every call, for logs) when a GPU exists but none is usable
    by the installed MXNet; else None (with a usable GPU, running on the CPU was a choice). Only the
    first call that finds a problem emits a :class:`GPUFallbackWarning`.
    """
    global _warned
    if _usable_gpus():
        return None
    problem = gpu_status().problem
    if problem is not None and not _warned:
        _warned = True
        warnings.warn(problem, GPUFallbackWarning, stacklevel=2)
    return problem


def describe_devices() -> str:
    """A human-readable report of GPUs, driver, MXNet's CUDA support and the verdict, and the
    CPU threads MXNet runs its operators on."""
    return f"{gpu_status().describe()}\nCPU threads: {threads_setting()}"


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
    usable = _usable_gpus()
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


def _missing_gpu_message(index: int, usable: tuple[int, ...]) -> str:
    available = "Available: cpu, cpu1, ... (any index)" + "".join(f", gpu{i}" for i in usable) + "."
    status = gpu_status()
    if any(g.ordinal == index for g in status.driver.gpus):
        return f"gpu{index} cannot be used. {status.problem or status.verdict} {available}"
    if status.usable:
        return f"gpu{index} does not exist ({status.verdict}). {available}"
    found = "no usable GPU" if status.driver.gpus else "no NVIDIA GPU found"
    return (f"gpu{index} does not exist ({found}); use --device cpu, or auto to take a GPU when "
            f"there is one. {available}")
