"""What each MXNet wheel can run on: the CUDA it was built with and the GPU code it contains.

Plain facts from MXNet's release build files, with no probing: the bottom of ``devices``, read by
the decision (which GPUs a wheel runs on, what to install instead) and by the probe that tells
which wheel is installed.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WheelBuild", "KNOWN_WHEELS", "ADVISED_WHEELS", "ADVISED_VERSION"]


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
ADVISED_WHEELS = ("mxnet-cu112", "mxnet-cu102")
ADVISED_VERSION = "1.9.1"
