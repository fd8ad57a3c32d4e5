"""The package's one shape engine: every block's input and output shape for an input shape.

It serves the registry (the smallest input a model accepts) and, through
:mod:`gluon_modern_cnn.flops`, the FLOP counter, the shape summaries and the models page. A
``HybridBlock`` runs symbolically (MXNet's shape inference; no parameter is allocated, so VGG-19's
144 million values cost nothing), once per network: :class:`SymbolicGraph` then answers for any
input shape. The book's ``nn.Block`` models run once on zeros in prediction mode.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Dict, Iterator, List, Sequence, Tuple

from ..runtime.compat import import_mxnet, mxnet_error_summary
from ..runtime.mxnet_internals import is_uninitialized

mx = import_mxnet()
gluon = mx.gluon

__all__ = ["Shape", "ShapeTrace", "SymbolicGraph", "infer_shapes", "all_blocks"]

Shape = Tuple[int, ...]


def all_blocks(block: gluon.Block) -> Iterator[gluon.Block]:
    """``block`` and all its descendants, depth first in registration order.

    Args:
        block: the root block.
    """
    yield block
    for child in block._children.values():
        yield from all_blocks(child)


@dataclass(frozen=True)
class ShapeTrace:
    """Input and output shapes of the blocks a network ran for one input shape, by ``id(block)``,
    in the order the blocks were first called.

    Args:
        shapes: ``id(block) -> (input shape, output shape)`` in first-call order.
    """

    shapes: Dict[int, Tuple[Shape, Shape]]

    def input_shape(self, block: gluon.Block) -> Shape:
        """The shape of ``block``'s (first) input."""
        return self.shapes[id(block)][0]

    def output_shape(self, block: gluon.Block) -> Shape:
        """The shape of ``block``'s output."""
        return self.shapes[id(block)][1]

    def ran(self, block: gluon.Block) -> bool:
        """Whether ``block`` was called in the traced pass."""
        return id(block) in self.shapes


def _with_hooks(net: gluon.Block, keep) -> Tuple[List[Tuple[gluon.Block, object, object]], list]:
    records: List[Tuple[gluon.Block, object, object]] = []

    def hook(block, inputs, output):
        if keep(output):
            records.append((block, inputs[0], output))
    return records, [b.register_forward_hook(hook) for b in all_blocks(net)]


def _does_not_fit(net: gluon.Block, shape: Shape, err: BaseException) -> ValueError:
    return ValueError(f"an input of shape {shape} does not fit {type(net).__name__}: "
                      f"{mxnet_error_summary(err)}")


def _check_not_empty(net: gluon.Block, shape: Shape, outputs) -> None:
    if any(d <= 0 for out in outputs for d in out):
        raise ValueError(f"an input of shape {shape} is too small for {type(net).__name__}: a "
                         f"layer's output would be empty")


class SymbolicGraph:
    """A ``HybridBlock`` traced once on a symbolic input, for shape inference at any input shape.

    numpy semantics may be on (the package's models) or off (legacy models such as gluoncv's,
    inside ``legacy_mode()``). Tracing allocates no parameter.

    Args:
        net: the network; it is called once on a symbolic variable ``data``.
    """

    def __init__(self, net: gluon.HybridBlock):
        self.net = net
        np_mode = mx.util.is_np_array()
        data = mx.sym.var("data")
        records, handles = _with_hooks(net, lambda output: True)
        try:
            net(data.as_np_ndarray() if np_mode else data)
        except mx.base.MXNetError as err:
            raise ValueError(f"{type(net).__name__} cannot be traced symbolically: "
                             f"{mxnet_error_summary(err)}") from None
        finally:
            for handle in handles:
                handle.detach()
        self.records = records
        self._group = mx.sym.Group([s.as_nd_ndarray() if np_mode else s
                                    for _, x, y in records for s in (x, y)])

    def infer(self, input_shape: Sequence[int], *,
              set_parameter_shapes: bool = False) -> List[Tuple[Shape, Shape]]:
        """``(input shape, output shape)`` of every traced call, in call order, for an input of
        ``input_shape``.

        Args:
            input_shape: the input's shape, batch dimension included.
            set_parameter_shapes: fill in the network's deferred parameter shapes (which then
                hold for this input size only: a dense layer's input width depends on it).

        Raises:
            ValueError: the input does not fit the network (a window larger than its input, or
                an empty output).
        """
        shape = tuple(int(d) for d in input_shape)
        try:
            # infer_shape prints its arguments to stdout when it fails; keep that quiet.
            with contextlib.redirect_stdout(io.StringIO()):
                arg_shapes, out_shapes, aux_shapes = self._group.infer_shape(data=shape)
        except mx.base.MXNetError as err:
            raise _does_not_fit(self.net, shape, err) from None
        _check_not_empty(self.net, shape, out_shapes)
        if set_parameter_shapes:
            self._set_parameter_shapes(arg_shapes, aux_shapes)
        return [(tuple(out_shapes[2 * i]), tuple(out_shapes[2 * i + 1]))
                for i in range(len(self.records))]

    def _set_parameter_shapes(self, arg_shapes, aux_shapes) -> None:
        known = dict(zip(self._group.list_arguments(), arg_shapes))
        known.update(zip(self._group.list_auxiliary_states(), aux_shapes))
        for p in self.net.collect_params().values():
            if p.name in known:
                p.shape = tuple(known[p.name])

    def fits(self, input_shape: Sequence[int]) -> bool:
        """Whether an input of ``input_shape`` runs through the network."""
        try:
            self.infer(input_shape)
        except ValueError:
            return False
        return True


def infer_shapes(net: gluon.Block, input_shape: Sequence[int]) -> ShapeTrace:
    """Every block's input and output shape for an input of ``input_shape``; deferred parameter
    shapes are filled in on the way.

    A ``HybridBlock`` runs symbolically (:class:`SymbolicGraph`) and allocates nothing. Any other
    block (the book's ``nn.Block`` models) runs once on zeros in prediction mode, initialized if
    it is not.

    Args:
        net: the network.
        input_shape: the input's shape, batch dimension included (NCHW for the chapter's models).

    Raises:
        ValueError: the input does not fit the network.
    """
    shape = tuple(int(d) for d in input_shape)
    if isinstance(net, gluon.HybridBlock):
        graph = SymbolicGraph(net)
        return _trace(graph.records, graph.infer(shape, set_parameter_shapes=True))
    # Deferred initialization first traces layers symbolically: keep only the real calls.
    records, handles = _with_hooks(
        net, lambda output: isinstance(output, (mx.np.ndarray, mx.nd.NDArray)))
    try:
        _forward_zeros(net, shape)
    except mx.base.MXNetError as err:
        raise _does_not_fit(net, shape, err) from None
    finally:
        for handle in handles:
            handle.detach()
    shapes = [(tuple(x.shape), tuple(y.shape)) for _, x, y in records]
    _check_not_empty(net, shape, [out for _, out in shapes])
    return _trace(records, shapes)


def _trace(records, shapes) -> ShapeTrace:
    first_calls: Dict[int, Tuple[Shape, Shape]] = {}  # dicts keep insertion (call) order
    for (block, _, _), pair in zip(records, shapes):
        first_calls.setdefault(id(block), pair)
    return ShapeTrace(first_calls)


def _forward_zeros(net: gluon.Block, shape: Shape) -> None:
    if any(is_uninitialized(p) for p in net.collect_params().values()):
        net.initialize()
    zeros = mx.np.zeros(shape) if mx.util.is_np_array() else mx.nd.zeros(shape)
    with mx.autograd.predict_mode():
        net(zeros)
