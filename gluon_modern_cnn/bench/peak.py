"""The machine's fp32 peak as MXNet reaches it: a large oneDNN convolution and matrix product.

Utilization is measured against what the same library sustains on large, well-shaped operators in
the same process and moment, not against a data-sheet figure: that is the ceiling a model's
training step could reach if its layers were all as efficient as the best case.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

from ..runtime.compat import import_mxnet
from ..checks import check_positive_int
from .stats import Summary, summarize

__all__ = ["PeakResult", "PeakProbe", "measure_peak", "CONV_SHAPE", "MATMUL_SIZE"]

#: (batch, channels in = channels out, height = width, kernel): a 3x3 convolution of the size found
#: in the middle of VGG and ResNet, large enough (29.6 GFLOP) for oneDNN's fastest kernels.
CONV_SHAPE: Tuple[int, int, int, int] = (32, 256, 28, 3)
#: Square fully connected layer (oneDNN inner product): (size x size) times (size x size).
MATMUL_SIZE = 2048


@dataclass(frozen=True)
class PeakResult:
    """GFLOP/s of the convolution and the matrix product; ``gflops`` is the larger median."""

    conv: Summary
    matmul: Summary
    conv_shape: Tuple[int, int, int, int]
    matmul_size: int
    dtype: str

    @property
    def gflops(self) -> float:
        return max(self.conv.median, self.matmul.median)

    def to_dict(self) -> Dict[str, Any]:
        return {"gflops": self.gflops, "dtype": self.dtype, "conv": self.conv.to_dict(),
                "conv_shape": list(self.conv_shape), "matmul": self.matmul.to_dict(),
                "matmul_size": self.matmul_size}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "PeakResult":
        return cls(Summary.from_dict(data["conv"]), Summary.from_dict(data["matmul"]),
                   tuple(data["conv_shape"]), int(data["matmul_size"]), data["dtype"])


class PeakProbe:
    """Buffers for one large convolution and one large matrix product, timed on demand.

    :meth:`sample` times one call of each, so that a benchmark can interleave peak samples with
    its own measurements and both see the same machine load; :meth:`result` summarizes them.
    """

    def __init__(self, *, device=None, conv_shape: Tuple[int, int, int, int] = CONV_SHAPE,
                 matmul_size: int = MATMUL_SIZE, dtype: str = "float32", warmup: int = 1):
        mx = import_mxnet()
        np, npx = mx.np, mx.npx
        check_positive_int(warmup, "warmup (the first calls create oneDNN's primitives)")
        device = device or mx.cpu()
        batch, channels, size, kernel = self.conv_shape = tuple(conv_shape)
        self.matmul_size, self.dtype = matmul_size, dtype
        x = np.random.uniform(size=(batch, channels, size, size), ctx=device).astype(dtype)
        w = np.random.uniform(size=(channels, channels, kernel, kernel), ctx=device).astype(dtype)
        a = np.random.uniform(size=(matmul_size, matmul_size), ctx=device).astype(dtype)
        b = np.random.uniform(size=(matmul_size, matmul_size), ctx=device).astype(dtype)
        self._operations = (
            (lambda: npx.convolution(x, w, kernel=(kernel, kernel), pad=(kernel // 2,) * 2,
                                     num_filter=channels, no_bias=True),
             2.0 * channels * kernel * kernel * channels * size * size * batch),
            (lambda: npx.fully_connected(a, b, num_hidden=matmul_size, no_bias=True),
             2.0 * matmul_size ** 3))
        self._rates: Tuple[List[float], List[float]] = ([], [])
        for _ in range(warmup):
            for operation, _ in self._operations:
                operation()
        npx.waitall()

    def sample(self) -> Tuple[float, float]:
        """Time one convolution and one matrix product; return their GFLOP/s."""
        npx = import_mxnet().npx
        npx.waitall()  # start from an idle engine
        rates = []
        for (operation, flops), kept in zip(self._operations, self._rates):
            start = time.perf_counter()
            operation()
            npx.waitall()
            kept.append(flops / (time.perf_counter() - start) / 1e9)
            rates.append(kept[-1])
        return rates[0], rates[1]

    def result(self) -> PeakResult:
        """The samples so far, summarized (at least one sample is needed)."""
        if not self._rates[0]:
            raise ValueError("no peak samples yet; call sample() at least once")
        return PeakResult(summarize(self._rates[0]), summarize(self._rates[1]), self.conv_shape,
                          self.matmul_size, self.dtype)


def measure_peak(*, device=None, conv_shape: Tuple[int, int, int, int] = CONV_SHAPE,
                 matmul_size: int = MATMUL_SIZE, warmup: int = 2, repeats: int = 5,
                 dtype: str = "float32") -> PeakResult:
    """Sustained GFLOP/s of a large convolution (forward, 3x3, stride 1, padding 1) and a large
    matrix product (``npx.fully_connected``, the operator behind ``nn.Dense``), each the median of
    ``repeats`` timed calls after ``warmup`` untimed ones, on ``device`` (default: the CPU)."""
    check_positive_int(repeats, "repeats")
    probe = PeakProbe(device=device, conv_shape=conv_shape, matmul_size=matmul_size, dtype=dtype,
                      warmup=warmup)
    for _ in range(repeats):
        probe.sample()
    return probe.result()
