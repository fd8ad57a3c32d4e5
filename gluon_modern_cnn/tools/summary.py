"""Shape traces as the chapter prints them, and model summaries built on them.

The chapter checks each architecture by feeding one example through the top-level layers and
printing ``layer.name, 'output shape:', X.shape``. :func:`model_summary` adds what the exercises
ask about, each layer's parameters and floating-point operations (counted by :mod:`.flops`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

from mxnet import autograd, np
from mxnet.gluon import nn

from .. import book
from .flops import layer_costs

__all__ = ["layer_shapes", "trace_lines", "format_trace_line", "LayerSummary", "ModelSummary",
           "model_summary", "format_summary"]


def format_trace_line(name: str, shape: Tuple[int, ...]) -> str:
    """One line as the book's ``print(layer.name, 'output shape:\\t', X.shape)`` prints it.

    Args:
        name: the layer's name.
        shape: its output's shape.
    """
    return f"{name} output shape:\t {shape}"


def layer_shapes(net, X) -> List[Tuple[str, Tuple[int, ...]]]:
    """Feed ``X`` through the top-level layers of ``net`` one by one (the chapter's loop
    ``for layer in net: X = layer(X)``), returning each layer's name and output shape.

    Args:
        net: an initialized ``Sequential`` or ``HybridSequential``.
        X: the input batch.
    """
    shapes = []
    for layer in net:
        X = layer(X)
        shapes.append((layer.name, tuple(X.shape)))
    return shapes


def trace_lines(net, input_shape: Tuple[int, ...]) -> List[str]:
    """The chapter's trace cell: initialize ``net`` and print each layer's output shape for a
    uniform random input of ``input_shape``.

    Args:
        net: a ``Sequential`` or ``HybridSequential``; ``net.initialize()`` is called on it.
        input_shape: the input's shape, batch dimension included, e.g. ``(1, 1, 224, 224)``.

    Returns:
        The lines, as :func:`format_trace_line` makes them.
    """
    X = np.random.uniform(size=input_shape)
    net.initialize()
    return [format_trace_line(name, shape) for name, shape in layer_shapes(net, X)]


@dataclass(frozen=True)
class LayerSummary:
    """A top-level layer: its trace line's name and shape, trainable parameters, forward FLOPs.

    Args:
        name: the layer's name (as the trace prints it), or an extra row's (``(residual
            additions)``).
        output_shape: its output's shape for one example (empty for an extra row).
        parameters: trainable parameter values in the layer.
        flops: forward FLOPs per example.
    """

    name: str
    output_shape: Tuple[int, ...]
    parameters: int
    flops: int


@dataclass(frozen=True)
class ModelSummary:
    """The layers of a network for one input shape, and their totals.

    Args:
        input_shape: the input's shape, as given.
        layers: one :class:`LayerSummary` per top-level layer, in order, then any extra rows.
    """

    input_shape: Tuple[int, ...]
    layers: List[LayerSummary]

    @property
    def parameters(self) -> int:
        return sum(layer.parameters for layer in self.layers)

    @property
    def flops(self) -> int:
        return sum(layer.flops for layer in self.layers)


def model_summary(net, input_shape: Sequence[int]) -> ModelSummary:
    """The chapter's shape trace of ``net`` for ``input_shape`` with each top-level layer's
    trainable parameters and forward FLOPs per example (``flops.layer_costs``, summed over the
    layer's leaves). Work a block does itself outside its layers (ResNet's residual additions)
    is one extra row. A network that is not sequential gets one row per leaf layer.

    Args:
        net: the network; initialized if it is not.
        input_shape: the input's shape; the batch dimension is ignored (one example is traced).
    """
    costs = layer_costs(net, input_shape)  # initializes the net and completes deferred shapes
    if not isinstance(net, (nn.Sequential, nn.HybridSequential)):  # no top-level layers to trace
        return ModelSummary(tuple(input_shape), [
            LayerSummary(c.name, c.output_shape, c.parameters, c.flops) for c in costs])
    with autograd.predict_mode():
        shapes = layer_shapes(net, np.zeros((1,) + tuple(input_shape[1:])))
    keys = list(net._children)
    layers = []
    for key, (name, shape) in zip(keys, shapes):
        own = [c for c in costs if c.name == key or c.name.startswith(f"{key}.")]
        layers.append(LayerSummary(name, shape, sum(c.parameters for c in own),
                                   sum(c.flops for c in own)))
    counted = {id(c) for c in costs if c.name.split(".")[0] in keys}
    layers += [LayerSummary(c.name, (), c.parameters, c.flops) for c in costs
               if id(c) not in counted]
    return ModelSummary(tuple(input_shape), layers)


def format_summary(summary: ModelSummary) -> List[str]:
    """The trace lines as the book prints them (whitespace normalized) with the parameters and
    FLOPs of each layer beside them, then the totals.

    Args:
        summary: what :func:`model_summary` returned.
    """
    rows = [(book.normalize_whitespace(format_trace_line(layer.name, layer.output_shape))
             if layer.output_shape else layer.name, f"{layer.parameters:,}", f"{layer.flops:,}")
            for layer in summary.layers]
    rows.append(("total", f"{summary.parameters:,}", f"{summary.flops:,}"))
    header = ("layer output shape", "parameters", "FLOPs")
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(3)]

    def line(row) -> str:
        return f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}"
    rule = "-" * len(line(header))
    return [line(header), rule, *map(line, rows[:-1]), rule, line(rows[-1]),
            f"input {summary.input_shape}: {summary.parameters:,} trainable parameters, "
            f"{_metric(summary.flops, 'FLOPs')} per example for one forward pass"]


def _metric(value: int, unit: str) -> str:
    """``value`` with a metric prefix and three significant digits: ``1.88 GFLOPs``."""
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value} {unit}"
