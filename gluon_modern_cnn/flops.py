"""Floating-point operations and parameters per layer, counted from the layers themselves.

Conventions (those of the chapter's exercises on computational cost and of most model zoos):

* a multiply-add is 2 FLOPs: a convolution costs ``2 * (C_in / groups) * k_h * k_w`` per output
  element (plus 1 for the bias), a dense layer ``2 * in_units`` per output (plus 1 for the bias);
* batch normalization costs 4 per element in prediction mode (subtract, divide, scale, shift),
  pooling ``k_h * k_w`` per output element (global pooling: its input size), activations 1 per
  element, dropout and flatten nothing;
* the additions and concatenations a custom block does in its ``forward`` (residual shortcuts) are
  counted as 1 per output element of that block beyond its layers' costs only where known (the
  residual add); concatenation moves memory and costs 0;
* a training step costs three forward passes (the backward pass is about twice the forward).

Counts are exact for a given input shape: a forward pass on one example records each leaf layer's
input and output shapes with forward hooks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import mxnet as mx
from mxnet import autograd, gluon, np
from mxnet.gluon import nn

__all__ = ["LayerCost", "layer_costs", "count_flops", "count_parameters", "TRAINING_FACTOR"]

#: FLOPs of a training step relative to a forward pass (forward + backward of about twice its cost).
TRAINING_FACTOR = 3


@dataclass(frozen=True)
class LayerCost:
    """One leaf layer: its structural name, type, output shape, parameters and forward FLOPs."""

    name: str
    kind: str
    output_shape: Tuple[int, ...]
    parameters: int
    flops: int


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _per_example(shape: Sequence[int]) -> int:
    return _numel(shape[1:])


def _activation_flops(layer, out_shape) -> int:
    act = getattr(layer, "act", None)
    return _per_example(out_shape) if act is not None else 0


def _flops_of(layer: gluon.Block, in_shape, out_shape) -> int:
    """Forward FLOPs per example of a leaf layer."""
    out = _per_example(out_shape)
    if isinstance(layer, (nn.Conv2D, nn.Conv1D, nn.Conv3D)):
        weight = layer.weight.shape  # (C_out, C_in / groups, k...)
        per_output = 2 * _numel(weight[1:]) + (1 if layer.bias is not None else 0)
        return out * per_output + _activation_flops(layer, out_shape)
    if isinstance(layer, nn.Dense):
        in_units = layer.weight.shape[1]
        return out * (2 * in_units + (1 if layer.bias is not None else 0)) \
            + _activation_flops(layer, out_shape)
    if isinstance(layer, (nn.BatchNorm,)) or type(layer).__name__ in (
            "BatchNorm", "HybridBatchNorm"):
        return 4 * out
    if isinstance(layer, (nn.GlobalAvgPool2D, nn.GlobalMaxPool2D)):
        return _per_example(in_shape)
    if isinstance(layer, (nn.MaxPool2D, nn.AvgPool2D)):
        return out * _numel(layer._kwargs["kernel"])
    if isinstance(layer, (nn.Activation,)):
        return out
    return 0


#: Layers counted as one unit (a convolution's or dense layer's fused activation is a child block).
_UNIT_LAYERS = (nn.Conv1D, nn.Conv2D, nn.Conv3D, nn.Dense)


def _leaves(block: gluon.Block, prefix: str = ""):
    children = list(block._children.items())
    if not children or isinstance(block, _UNIT_LAYERS):
        yield prefix.rstrip("."), block
        return
    for name, child in children:
        yield from _leaves(child, f"{prefix}{name}.")


def _extra_flops(block: gluon.Block, out_shape) -> int:
    """Arithmetic a custom block does itself: the residual addition (and its ReLU)."""
    if type(block).__name__ in ("Residual", "HybridResidual"):
        return 2 * _per_example(out_shape)
    return 0


def layer_costs(net: gluon.Block, input_shape: Sequence[int]) -> List[LayerCost]:
    """Every leaf layer's output shape, parameter count and forward FLOPs per example, in the
    order they run, for an input of ``input_shape`` (the batch dimension is ignored).

    ``net`` must be initialized or initializable (it is initialized with defaults if not); the
    forward pass runs in prediction mode on one example of zeros.
    """
    shape = (1,) + tuple(input_shape[1:])
    leaves = {id(layer): name for name, layer in _leaves(net)}
    custom = [b for b in _all_blocks(net) if type(b).__name__ in ("Residual", "HybridResidual")]
    records: List[Tuple[str, gluon.Block, tuple, tuple]] = []
    handles = []

    def hook(layer, inputs, output):
        # Deferred initialization traces some layers symbolically first; count real passes only.
        if id(layer) in leaves and isinstance(output, mx.np.ndarray):
            records.append((leaves[id(layer)], layer, tuple(inputs[0].shape),
                            tuple(output.shape)))
    extra = []

    def extra_hook(block, inputs, output):
        if isinstance(output, mx.np.ndarray):
            extra.append(_extra_flops(block, tuple(output.shape)))

    for layer in _all_blocks(net):
        if id(layer) in leaves:
            handles.append(layer.register_forward_hook(hook))
    for block in custom:
        handles.append(block.register_forward_hook(extra_hook))
    try:
        if any(p._data is None and not p._deferred_init for p in net.collect_params().values()):
            net.initialize()
        with autograd.predict_mode():
            net(np.zeros(shape))
    finally:
        for h in handles:
            h.detach()
    costs = [LayerCost(name, type(layer).__name__, out_shape, _own_parameters(layer),
                       _flops_of(layer, in_shape, out_shape))
             for name, layer, in_shape, out_shape in records]
    if extra:
        costs.append(LayerCost("(residual additions)", "add", (), 0, sum(extra)))
    return costs


def _all_blocks(block: gluon.Block):
    yield block
    for child in block._children.values():
        yield from _all_blocks(child)


def _own_parameters(layer: gluon.Block) -> int:
    return sum(_numel(p.shape) for p in layer._reg_params.values() if p.grad_req != "null")


def count_parameters(net: gluon.Block, *, trainable_only: bool = True) -> int:
    """Number of parameter values; by default only trainable ones (``grad_req != 'null'``), which
    leaves out batch-norm running statistics. The network's shapes must be known (initialized and
    run once)."""
    total = 0
    for p in net.collect_params().values():
        if trainable_only and p.grad_req == "null":
            continue
        if p.shape is None or any(d <= 0 for d in p.shape):
            raise ValueError(f"parameter {p.name} has no known shape yet; run the network on an "
                             "input once first")
        total += _numel(p.shape)
    return total


def count_flops(net: gluon.Block, input_shape: Sequence[int], *,
                training: bool = False) -> int:
    """Forward FLOPs per example (``training=True``: a training step's, three times as many)."""
    forward = sum(c.flops for c in layer_costs(net, input_shape))
    return forward * TRAINING_FACTOR if training else forward
