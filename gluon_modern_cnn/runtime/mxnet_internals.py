"""MXNet's private internals the package relies on, in one place.

MXNet 1.9.1 is the last 1.x release, so these cannot move under the package's feet; keeping
every private attribute here means the rest of the package calls functions with names that say
what they do, and a reader sees at once how much of MXNet's inside is used:

* Gluon parameters: whether one holds data or waits for deferred initialisation, a block's
  parameters under their structural names, a ``Trainer``'s parameter order, a layer's own
  parameters; the layout of ``Trainer.save_states``' pickle (kept by parameter position);
* a ``HybridBlock``'s cached graph: the attributes that make it up (the mode-aware blocks keep
  one set per mode), replacing the traced graph, dropping it;
* MXNet's ONNX exporter: its converter registry, extended with converters for the numpy-mode
  operators the package's models use.

One exception, by nature: ``models/stateful.py``'s ``ModeAwareHybridBlock`` is a HybridBlock
subclass and overrides HybridBlock's tracing hooks (``_get_graph``, ``_call_cached_op``) itself;
the attributes it swaps per mode come from here.
"""
from __future__ import annotations

import functools
import pickle
from typing import Callable, Dict, List

from .compat import import_mxnet

__all__ = ["has_data", "waits_for_deferred_init", "is_uninitialized", "has_default_storage",
           "parameters_by_name", "trainer_parameters", "reorder_optimizer_states",
           "own_parameters", "CACHED_GRAPH_ATTRS",
           "fresh_graph_cache", "set_cached_graph", "clear_cached_graph", "graph_tracer",
           "replace_graph_tracer", "restore_graph_tracer", "is_hybridized",
           "onnx_graph_converter", "onnx_has_converter"]


# ---------------------------------------------------------------------------------------------
# Gluon parameters
# ---------------------------------------------------------------------------------------------

def has_data(param) -> bool:
    """Whether ``param`` holds arrays (it is initialised and its shape known)."""
    return param._data is not None


def waits_for_deferred_init(param) -> bool:
    """Whether ``param`` is initialised but waits for the first forward pass to know its shape."""
    return param._data is None and bool(param._deferred_init)


def is_uninitialized(param) -> bool:
    """Whether ``param`` was never initialised (neither holds arrays nor waits for a shape)."""
    return param._data is None and not param._deferred_init


def has_default_storage(param) -> bool:
    """Whether ``param`` is stored densely (not as a sparse array)."""
    return param._stype == "default"


def parameters_by_name(block) -> Dict[str, object]:
    """``block``'s parameters under their structural names (``features.0.weight``), which do not
    depend on MXNet's global name counters."""
    return block._collect_params_with_prefix()


def trainer_parameters(trainer) -> List[object]:
    """``trainer``'s parameters in its order: MXNet keeps optimizer states by position in it."""
    return trainer._params


def reorder_optimizer_states(data: bytes, moved: Dict[int, int]) -> bytes:
    """``Trainer.save_states``' pickle with the entry of the parameter at position ``i`` moved to
    position ``moved[i]``. MXNet keys the optimizer states, the update counts (Adam's bias
    correction) and ``idx2name`` by the parameter's position in the trainer."""
    loaded = pickle.loads(data)  # a checkpoint's own pickle (see training.checkpoint.Checkpoint)
    states, optimizer = loaded if isinstance(loaded, tuple) and len(loaded) == 2 else (loaded, None)
    states = {moved.get(k, k): v for k, v in states.items()}
    if optimizer is None:
        return pickle.dumps(states)
    for counts in getattr(optimizer, "_all_index_update_counts", {}).values():
        remapped = {moved.get(k, k): v for k, v in counts.items()}
        counts.clear()       # in place: optimizer._index_update_count is one of these dicts
        counts.update(remapped)
    optimizer.idx2name = {moved.get(k, k): v for k, v in getattr(optimizer, "idx2name", {}).items()}
    return pickle.dumps((states, optimizer))


def own_parameters(layer) -> Dict[str, object]:
    """The parameters ``layer`` registered itself, without its children's."""
    return layer._reg_params


# ---------------------------------------------------------------------------------------------
# A HybridBlock's cached graph
# ---------------------------------------------------------------------------------------------

#: The attributes a HybridBlock keeps about its one cached graph.
CACHED_GRAPH_ATTRS = ("_cached_graph", "_cached_op", "_cached_op_args", "_in_format",
                      "_out_format", "_state_params")


def fresh_graph_cache() -> dict:
    """The values of :data:`CACHED_GRAPH_ATTRS` of a block that has traced nothing yet."""
    return {"_cached_graph": (), "_cached_op": None, "_cached_op_args": [], "_in_format": None,
            "_out_format": None, "_state_params": ()}


def set_cached_graph(block, inputs, out) -> None:
    """Make ``(inputs, out)`` the graph ``block`` runs (a rewritten trace)."""
    block._cached_graph = inputs, out


def clear_cached_graph(block) -> None:
    """Drop ``block``'s traced graph and cached operator: the next call traces again."""
    block._clear_cached_op()


def graph_tracer(block) -> Callable:
    """The method ``block`` traces its graph with (``HybridBlock._get_graph``), bound."""
    return block._get_graph


def replace_graph_tracer(block, trace: Callable) -> None:
    """Make ``block`` trace its graph with ``trace(*args) -> (inputs, out)``;
    :func:`restore_graph_tracer` undoes it."""
    block._get_graph = trace


def restore_graph_tracer(block) -> None:
    """Undo :func:`replace_graph_tracer`."""
    del block._get_graph


def is_hybridized(block) -> bool:
    """Whether ``block.hybridize()`` is in effect."""
    return bool(block._active)


# ---------------------------------------------------------------------------------------------
# MXNet's ONNX exporter
# ---------------------------------------------------------------------------------------------

def onnx_has_converter(graph_converter, op: str, opset: int) -> bool:
    """Whether the exporter can translate operator ``op`` for ``opset`` (translations of older
    opsets, down to 12, serve newer ones)."""
    registry = graph_converter.registry_
    return any(op in registry.get(version, {}) for version in range(opset, 11, -1))


# Numpy-mode operators whose legacy equivalent has the same inputs, attributes and semantics
# (numpy-mode arithmetic broadcasts, so it maps to the legacy broadcast_* translations). Layers
# called through npx (npx.convolution, npx.activation, npx.batch_norm, npx.pooling,
# npx.fully_connected, npx.dropout, npx.batch_flatten, npx.softmax) are aliases that the graph
# already records under their legacy names, which the exporter knows.
_SAME_AS_LEGACY = {
    "_npx_relu": "relu", "_npx_sigmoid": "sigmoid",
    "_npi_add": "broadcast_add", "_npi_subtract": "broadcast_sub",
    "_npi_multiply": "broadcast_mul", "_npi_true_divide": "broadcast_div",
    "_npi_power": "broadcast_power", "broadcast_maximum": "_maximum",  # np.maximum's op
    "_npi_add_scalar": "_plus_scalar", "_npi_subtract_scalar": "_minus_scalar",
    "_npi_multiply_scalar": "_mul_scalar", "_npi_true_divide_scalar": "_div_scalar",
    "_npi_power_scalar": "_power_scalar",
    "_npi_sqrt": "sqrt", "_npi_square": "square", "_npi_exp": "exp", "_npi_log": "log",
    "_npi_absolute": "abs", "_npi_tanh": "tanh", "_npi_reciprocal": "reciprocal",
    "_npi_negative": "negative", "_npi_stack": "stack", "_np_copy": "_copy",
}
# Same as the legacy operator with attributes renamed (numpy name -> legacy name).
_RENAMED_ATTRS = {"_npi_concatenate": ("Concat", {"axis": "dim"})}
# Scalar on the left (``1 - x``, ``2 / x``): the legacy translation detects this case from the
# node's name, which numpy-mode nodes do not carry, so these get their own converter.
_REVERSED_SCALAR = {"_npi_rsubtract_scalar": "Sub", "_npi_rtrue_divide_scalar": "Div",
                    "_npi_rpower_scalar": "Pow"}
# Reductions with numpy semantics (a full reduction gives a 0-d array, the legacy ones a 1-d one).
_REDUCTIONS = {"_npi_mean": "ReduceMean", "_np_sum": "ReduceSum", "_np_max": "ReduceMax",
               "_np_min": "ReduceMin", "_np_prod": "ReduceProd"}


@functools.lru_cache(maxsize=None)
def onnx_graph_converter():
    """MXNet's ONNX graph builder (``mx2onnx._export_onnx.MXNetGraph``) with converters for the
    numpy-mode operators registered in it (once). Needs the onnx package."""
    import_mxnet()
    import mxnet.onnx  # noqa: F401  (importing it registers the legacy translations)
    from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph
    from mxnet.onnx.mx2onnx._op_translations import _op_translations_opset12 as legacy

    registry = MXNetGraph.registry_
    # Opset-specific legacy translations (e.g. opset 13's stack) are reused for the same opset.
    for np_op, legacy_op in _SAME_AS_LEGACY.items():
        for version in sorted(registry):
            if legacy_op in registry[version]:
                MXNetGraph.register(np_op, version)(registry[version][legacy_op])
    for np_op, (legacy_op, renames) in _RENAMED_ATTRS.items():
        MXNetGraph.register(np_op)(_with_renamed_attrs(registry[12][legacy_op], np_op, renames))
    for np_op, onnx_op in _REVERSED_SCALAR.items():
        MXNetGraph.register(np_op)(_reversed_scalar_converter(legacy, onnx_op))
    for np_op, onnx_op in _REDUCTIONS.items():
        MXNetGraph.register(np_op)(_reduction_converter(legacy, np_op, onnx_op))
    MXNetGraph.register("_np_reshape")(_reshape_converter(legacy, "_np_reshape", {-1: -1}))
    MXNetGraph.register("_npx_reshape")(_npx_reshape_converter(legacy))
    MXNetGraph.register("_np_dot")(_dot_converter(legacy))
    return MXNetGraph


def _dot_converter(legacy) -> Callable:
    # np.dot(a, b) equals ONNX MatMul whenever b has 1 or 2 dimensions, the only way the package's
    # layers use it (ranks are not known here; a larger b would fail in onnxruntime's check).
    def convert(node, **kwargs):
        name, inputs, _ = legacy.get_inputs(node, kwargs)
        return [legacy.onnx.helper.make_node("MatMul", inputs[:2], [name], name=name)]
    return convert


def _npx_reshape_converter(legacy) -> Callable:
    """npx.reshape: codes -1 (infer) and -2 (copy the input's dimension) map onto one Reshape; with
    -5 (merge two input dimensions) the target shape is computed from the input's shape in the
    graph. The other codes (-3, -4, -6: drop, copy the rest, split) are not supported."""
    positional = _reshape_converter(legacy, "_npx_reshape", {-1: -1, -2: 0})

    def convert(node, **kwargs):
        name, inputs, attrs = legacy.get_inputs(node, kwargs)
        newshape = legacy.convert_string_to_list(attrs["newshape"])
        if -5 not in newshape:
            return positional(node, **kwargs)
        if any(code in (-3, -4, -6) for code in newshape) or \
                attrs.get("reverse", "False") in ("True", "1"):
            raise NotImplementedError(f"ONNX export of _npx_reshape does not support "
                                      f"newshape={attrs['newshape']} with reverse={attrs.get('reverse')}")
        make_node = legacy.onnx.helper.make_node
        nodes = [make_node("Shape", inputs[:1], [name + "_in_shape"], name=name + "_in_shape")]
        pieces, axis = [], 0  # axis: the next input dimension the codes refer to

        def input_dims(first: int, count: int) -> str:
            piece = f"{name}_dims{len(pieces)}"
            legacy.create_tensor([first], piece + "_start", kwargs["initializer"])
            legacy.create_tensor([first + count], piece + "_end", kwargs["initializer"])
            nodes.append(make_node("Slice", [name + "_in_shape", piece + "_start", piece + "_end"],
                                   [piece], name=piece))
            return piece

        for code in newshape:
            if code == -5:  # the product of the next two input dimensions
                dims = input_dims(axis, 2)
                piece = dims + "_product"
                nodes.append(make_node("ReduceProd", [dims], [piece], name=piece, keepdims=1))
                axis += 2
            elif code == -2:
                piece = input_dims(axis, 1)
                axis += 1
            else:  # a size, or -1 (inferred); each stands for one input dimension
                piece = f"{name}_dims{len(pieces)}"
                legacy.create_tensor([code], piece, kwargs["initializer"])
                axis += 1
            pieces.append(piece)
        nodes.append(make_node("Concat", pieces, [name + "_shape"], name=name + "_shape", axis=0))
        nodes.append(make_node("Reshape", [inputs[0], name + "_shape"], [name], name=name))
        return nodes
    return convert


def _with_renamed_attrs(translate: Callable, np_op: str, renames: Dict[str, str]) -> Callable:
    def convert(node, **kwargs):
        attrs = dict(node.get("attrs", {}))
        for new, old in renames.items():
            if attrs.get(new) == "None":
                raise NotImplementedError(f"ONNX export of {np_op} with {new}=None is not "
                                          f"supported")
            if new in attrs:
                attrs[old] = attrs.pop(new)
        return translate(dict(node, attrs=attrs), **kwargs)
    return convert


def _reversed_scalar_converter(legacy, onnx_op: str) -> Callable:
    import numpy

    def convert(node, **kwargs):
        name, inputs, attrs = legacy.get_inputs(node, kwargs)
        dtype = legacy.get_input_dtypes(node, kwargs)[0]
        # numpy-mode rule: a Python scalar takes the array's dtype.
        scalar = numpy.dtype(dtype).type(float(attrs["scalar"]))
        legacy.create_const_scalar_node(name + "_scalar", scalar, kwargs)
        return [legacy.onnx.helper.make_node(onnx_op, [name + "_scalar", inputs[0]], [name],
                                             name=name)]
    return convert


def _reduction_converter(legacy, np_op: str, onnx_op: str) -> Callable:
    def convert(node, **kwargs):
        name, inputs, attrs = legacy.get_inputs(node, kwargs)
        for attr in ("dtype", "initial"):
            if attrs.get(attr, "None") != "None":
                raise NotImplementedError(f"ONNX export of {np_op} with {attr}={attrs[attr]} "
                                          f"is not supported")
        keepdims = legacy.get_boolean_attribute_value(attrs, "keepdims")
        axis = attrs.get("axis", "None")
        axes = None if axis == "None" else legacy.convert_string_to_list(axis)
        make_node = legacy.onnx.helper.make_node
        if axes == []:  # numpy: reducing over no axes returns the input
            return [make_node("Identity", inputs[:1], [name], name=name)]
        if axes is None:
            return [make_node(onnx_op, inputs[:1], [name], name=name, keepdims=keepdims)]
        # The axes are an input of ReduceSum from opset 13 and of the other reductions from opset
        # 18. MXNet's exporter validates every node against the newest opset of the installed
        # onnx too, so the older form (an attribute) is rejected even where it would be valid.
        if onnx_op != "ReduceSum" and kwargs["opset_version"] < 18:
            raise NotImplementedError(
                f"ONNX export of {np_op} over axes {axes} ({onnx_op}) needs opset 18 or later, "
                f"where its axes are an input; pass opset=18 or opset=19")
        legacy.create_tensor(axes, name + "_axes", kwargs["initializer"])
        return [make_node(onnx_op, [inputs[0], name + "_axes"], [name], name=name,
                          keepdims=keepdims)]
    return convert


def _reshape_converter(legacy, np_op: str, codes: Dict[int, int]) -> Callable:
    def convert(node, **kwargs):
        name, inputs, attrs = legacy.get_inputs(node, kwargs)
        if attrs.get("order", "C") != "C" or attrs.get("reverse", "False") in ("True", "1"):
            raise NotImplementedError(f"ONNX export of {np_op} supports order='C' without "
                                      f"reverse only; got attributes {attrs}")
        shape = []
        for dim in legacy.convert_string_to_list(attrs["newshape"]):
            if dim <= 0 and dim not in codes:
                raise NotImplementedError(f"ONNX export of {np_op} does not support the shape "
                                          f"code {dim} in newshape={attrs['newshape']}")
            shape.append(codes.get(dim, dim))
        legacy.create_tensor(shape, name + "_shape", kwargs["initializer"])
        return [legacy.onnx.helper.make_node("Reshape", [inputs[0], name + "_shape"], [name],
                                             name=name)]
    return convert
