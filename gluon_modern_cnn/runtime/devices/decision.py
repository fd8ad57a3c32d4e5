"""The decision "which GPUs can the installed MXNet run on?", from what the probes found.

Pure: no probing and no output. The probes' results are plain data (:class:`DriverProbe`,
:class:`MXNetProbe`), so that the decision can be tested with made-up machines; :func:`assess`
compares them with the wheel table and returns a :class:`GPUStatus`, which says why a GPU cannot be
used and what to install instead.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable

from .wheels import ADVISED_VERSION, ADVISED_WHEELS, KNOWN_WHEELS

__all__ = ["GPU", "DriverProbe", "MXNetProbe", "GPUStatus", "assess"]


# ---------------------------------------------------------------------------------------------------
# What the probes found (plain data)
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
# The decision
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
                f"{name}=={ADVISED_VERSION} runs on {KNOWN_WHEELS[name].supported_text()}"
                for name in ADVISED_WHEELS))
            continue
        fitting = [name for name in ADVISED_WHEELS if KNOWN_WHEELS[name].runs_on(cap)]
        if fitting:
            advice.append(f"for compute capability {cap[0]}.{cap[1]} install {fitting[0]}: "
                          f"{uninstall}pip install {fitting[0]}=={ADVISED_VERSION}")
        else:
            advice.append(f"no MXNet {ADVISED_VERSION} wheel has GPU code for compute capability "
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
