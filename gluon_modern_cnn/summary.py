"""Shape traces as the chapter prints them: each top-level layer's name and output shape."""
from __future__ import annotations

from typing import List, Tuple

from mxnet import np

__all__ = ["layer_shapes", "trace_lines", "format_trace_line"]


def format_trace_line(name: str, shape: Tuple[int, ...]) -> str:
    """One line as the book's ``print(layer.name, 'output shape:\\t', X.shape)`` prints it."""
    return f"{name} output shape:\t {shape}"


def layer_shapes(net, X) -> List[Tuple[str, Tuple[int, ...]]]:
    """Feed ``X`` through the top-level layers of ``net`` one by one (the chapter's loop
    ``for layer in net: X = layer(X)``), returning each layer's name and output shape."""
    shapes = []
    for layer in net:
        X = layer(X)
        shapes.append((layer.name, tuple(X.shape)))
    return shapes


def trace_lines(net, input_shape: Tuple[int, ...]) -> List[str]:
    """The chapter's trace cell: initialize ``net`` and print each layer's output shape for a
    uniform random input of ``input_shape``."""
    X = np.random.uniform(size=input_shape)
    net.initialize()
    return [format_trace_line(name, shape) for name, shape in layer_shapes(net, X)]
