"""Shapes, parameters and floating-point operations per layer, counted from the layers themselves.

Conventions (those of the chapter's exercises on computational cost and of most model zoos):

* a multiply-add is 2 FLOPs: a convolution costs ``2 * (C_in / groups) * k_h * k_w`` per output
  element (plus 1 for the bias), a dense layer ``2 * in_units`` per output (plus 1 for the bias);
  a fused activation 1 per output element;
* batch normalization costs 4 per element in prediction mode (subtract, divide, scale, shift),
  pooling ``k_h * k_w`` per output element (global pooling: its input size), activations 1 per
  element, dropout, flatten and concatenation nothing (concatenation only moves memory);
* what a residual block computes in its own forward rather than in a layer costs 1 per output
  element and operation (the shortcut addition, the ReLUs the book's block applies itself);
* a training step costs three forward passes (the backward pass is about twice the forward).

The shapes come from the models' shape engine (:func:`gluon_modern_cnn.models.infer_shapes`,
re-exported here): one pass over the network with forward hooks on every block, symbolic for a
``HybridBlock`` (no parameter is allocated, so VGG-19's 144 million values cost nothing), on one
example of zeros in prediction mode for the book's ``nn.Block`` models.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, List, Sequence, Tuple

from mxnet import gluon
from mxnet.gluon import nn

from ..models._shapes import Shape, ShapeTrace, all_blocks, infer_shapes
from ..runtime.mxnet_internals import own_parameters

__all__ = ["Shape", "ShapeTrace", "infer_shapes", "all_blocks", "LayerCost", "leaf_layers", "layer_flops",
           "layer_parameters", "block_extra_flops", "layer_costs", "count_flops",
           "count_parameters", "TRAINING_FACTOR"]

#: FLOPs of a training step relative to a forward pass (forward + backward of about twice its cost).
TRAINING_FACTOR = 3


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _per_example(shape: Sequence[int]) -> int:
    return _numel(shape[1:])


# ---------------------------------------------------------------------------------------------
# Costs
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerCost:
    """One leaf layer: its structural name, type, output shape, parameters and forward FLOPs.

    Args:
        name: the structural name (``1.0.conv1``).
        kind: the layer's class name (``Conv2D``).
        output_shape: its output's shape for one example, batch dimension (1) included.
        parameters: trainable parameter values it owns.
        flops: forward FLOPs per example (see the module docstring's conventions).
    """

    name: str
    kind: str
    output_shape: Shape
    parameters: int
    flops: int


#: Layers counted as one unit (a convolution's or dense layer's fused activation is a child block).
_UNIT_LAYERS = (nn.Conv1D, nn.Conv2D, nn.Conv3D, nn.Dense)


def leaf_layers(block: gluon.Block, prefix: str = "") -> Iterator[Tuple[str, gluon.Block]]:
    """The layers whose costs are counted, with their structural names (``1.0.conv1``).

    A convolution or dense layer counts as one unit with its fused activation.

    Args:
        block: the network (or any block in it).
        prefix: prepended to every name (default none).
    """
    children = list(block._children.items())
    if not children or isinstance(block, _UNIT_LAYERS):
        yield prefix.rstrip("."), block
        return
    for name, child in children:
        yield from leaf_layers(child, f"{prefix}{name}.")


def _is_batch_norm(layer: gluon.Block) -> bool:
    # Gluon's layer, or one with the book's moving statistics (section 7.5's BatchNorm and its twin).
    return isinstance(layer, nn.BatchNorm) or hasattr(layer, "moving_mean")


def layer_flops(layer: gluon.Block, in_shape: Shape, out_shape: Shape) -> int:
    """Forward FLOPs per example of a leaf layer (see the module docstring's conventions).

    Args:
        layer: the leaf layer; a convolution's or dense layer's weight shape must be known.
        in_shape: its input's shape, batch dimension included (read by global pooling only).
        out_shape: its output's shape, batch dimension included.
    """
    out = _per_example(out_shape)
    activation = out if getattr(layer, "act", None) is not None else 0
    if isinstance(layer, (nn.Conv1D, nn.Conv2D, nn.Conv3D)):
        per_output = 2 * _numel(layer.weight.shape[1:]) + (1 if layer.bias is not None else 0)
        return out * per_output + activation
    if isinstance(layer, nn.Dense):
        in_units = layer.weight.shape[1]
        return out * (2 * in_units + (1 if layer.bias is not None else 0)) + activation
    if _is_batch_norm(layer):
        return 4 * out
    if isinstance(layer, (nn.GlobalAvgPool2D, nn.GlobalMaxPool2D)):
        return _per_example(in_shape)
    if isinstance(layer, (nn.MaxPool2D, nn.AvgPool2D)):
        return out * _numel(layer._kwargs["kernel"])
    if isinstance(layer, nn.Activation):
        return out
    return 0


def block_extra_flops(block: gluon.Block, out_shape: Shape) -> int:
    """Arithmetic a custom block does in its own forward rather than in a layer, per example.

    A block declares it as ``extra_flops_per_output`` (FLOPs per output element; 0 when absent):
    the book's residual block applies ReLU after ``bn1``, adds the shortcut and applies ReLU
    again (3); the paper's v1 block adds and applies ReLU (2); the pre-activation block only
    adds (1).

    Args:
        block: any block.
        out_shape: its output's shape, batch dimension included.
    """
    return getattr(block, "extra_flops_per_output", 0) * _per_example(out_shape)


def layer_parameters(layer: gluon.Block) -> int:
    """Trainable parameter values a layer owns (not its children's).

    Args:
        layer: any block whose parameter shapes are known.
    """
    return sum(_numel(p.shape) for p in own_parameters(layer).values() if p.grad_req != "null")


def layer_costs(net: gluon.Block, input_shape: Sequence[int], *,
                trace: ShapeTrace = None) -> List[LayerCost]:
    """Every leaf layer's output shape, parameter count and forward FLOPs per example, in the
    order they run; the residual additions, if any, as a last entry.

    Args:
        net: the network.
        input_shape: the input's shape; the batch dimension is ignored.
        trace: reuse an :func:`infer_shapes` result; default ``None``, traced here.
    """
    shape = (1,) + tuple(int(d) for d in input_shape[1:])
    trace = trace or infer_shapes(net, shape)
    run_order = {block_id: i for i, block_id in enumerate(trace.shapes)}
    leaves = sorted(((name, layer) for name, layer in leaf_layers(net) if trace.ran(layer)),
                    key=lambda leaf: run_order[id(leaf[1])])
    costs = [LayerCost(name, type(layer).__name__, trace.output_shape(layer),
                       layer_parameters(layer),
                       layer_flops(layer, trace.input_shape(layer), trace.output_shape(layer)))
             for name, layer in leaves]
    extra = sum(block_extra_flops(block, trace.output_shape(block))
                for block in all_blocks(net) if trace.ran(block))
    if extra:
        costs.append(LayerCost("(residual additions)", "add", (), 0, extra))
    return costs


def count_parameters(net: gluon.Block, *, trainable_only: bool = True) -> int:
    """Number of parameter values. The network's shapes must be known (run it, or
    :func:`infer_shapes`, once first).

    Args:
        net: the network.
        trainable_only: count only trainable ones (``grad_req != 'null'``; default), which leaves
            out batch-norm running statistics.

    Raises:
        ValueError: for a parameter whose shape is not known yet.
    """
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
    """Forward FLOPs per example.

    Args:
        net: the network.
        input_shape: the input's shape; the batch dimension is ignored.
        training: count a training step's FLOPs instead, :data:`TRAINING_FACTOR` (3) times as
            many (default False).
    """
    forward = sum(c.flops for c in layer_costs(net, input_shape))
    return forward * TRAINING_FACTOR if training else forward
