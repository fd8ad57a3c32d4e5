"""Pieces shared by the model families."""
from __future__ import annotations

from typing import Sequence, Tuple

from mxnet.gluon import nn

from ..checks import check_positive_int

__all__ = ["sequential", "check_positive_int", "check_conv_arch"]


def sequential(*, hybrid: bool = False) -> nn.Sequential:
    """An empty ``nn.Sequential`` as in the book, or its hybridizable twin ``nn.HybridSequential``.

    Args:
        hybrid: build the twin from HybridBlocks (``nn.HybridSequential``), which can be
            hybridized.
    """
    return nn.HybridSequential() if hybrid else nn.Sequential()


def check_conv_arch(conv_arch) -> Tuple[Tuple[int, int], ...]:
    """Validate a VGG ``conv_arch``: a non-empty sequence of ``(num_convs, num_channels)`` pairs.

    Args:
        conv_arch: the value to check.
    """
    example = "((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))"
    if isinstance(conv_arch, (str, bytes)) or not isinstance(conv_arch, Sequence) or not conv_arch:
        raise ValueError(f"conv_arch must be a non-empty sequence of (num_convs, num_channels) "
                         f"pairs such as {example}; got {conv_arch!r}")
    pairs = []
    for i, pair in enumerate(conv_arch):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise ValueError(f"conv_arch[{i}] must be a (num_convs, num_channels) pair such as "
                             f"(2, 256); got {pair!r}")
        pairs.append((check_positive_int(pair[0], f"conv_arch[{i}] num_convs"),
                      check_positive_int(pair[1], f"conv_arch[{i}] num_channels")))
    return tuple(pairs)
