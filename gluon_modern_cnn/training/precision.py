"""bfloat16 training for the hybridizable twins, with float32 master weights.

The chapter's models (sections 7.1-7.7) train in float32 in the book. :func:`use_bfloat16` makes a
``_hybrid`` twin compute its convolutions and dense layers in bfloat16 while everything a user
keeps stays float32: the parameters (the master weights the optimizer updates), their gradients,
the optimizer's state, batch norm's statistics, the network's output and therefore the loss.

How: MXNet 1.9's AMP rewrites *legacy* graphs only (``amp.init`` patches ``mx.nd``/``mx.sym``,
which numpy-mode Gluon layers never call). A hybridized twin, though, runs one graph, and its
operators are the same ones in both modes (``npx.convolution`` is ``Convolution``). So the twin's
traced graph is passed through ``amp.convert_symbol(target_dtype='bfloat16')`` (a graph pass that
inserts ``amp_cast`` nodes: float32 weights and activations are cast to bfloat16 on their way
into a convolution or dense layer, and their gradients are cast back on the way out), and the
result runs as the twin's cached graph under the package's numpy semantics. The block keeps its
parameters and names, so checkpoints, ``save_parameters`` and the trainer are unchanged.

bfloat16 kernels need oneDNN's support in the CPU: ``avx512_bf16`` (Intel Cooper Lake and later,
AMD Zen 4 and later) or ``amx_bf16`` (Intel Sapphire Rapids and later). Elsewhere oneDNN has no
bfloat16 convolution (MXNet fails with "could not create a primitive descriptor iterator"), so
:func:`check_bfloat16_support` refuses before training starts, naming the missing feature.
"""
from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

from ..runtime.compat import import_mxnet, legacy_mode
from ..runtime.machine import cpu_flags, cpu_model
from ..runtime.mxnet_internals import (clear_cached_graph, graph_tracer, is_hybridized,
                                        replace_graph_tracer, restore_graph_tracer,
                                        set_cached_graph)

__all__ = ["PRECISIONS", "BFLOAT16_CPU_FEATURES", "ASSUME_BF16_ENV", "BFloat16Unsupported",
           "bfloat16_cpu_feature", "check_bfloat16_support", "bfloat16_graph",
           "use_bfloat16", "uses_bfloat16", "OperatorDtypes", "operator_dtypes",
           "explain_bfloat16_failure", "probe_bfloat16_kernels"]

#: The types a model can train in: float32 (the book's) and bfloat16 (convolutions and dense
#: layers in bfloat16, everything kept in float32).
PRECISIONS = ("float32", "bfloat16")
#: CPU features (as ``/proc/cpuinfo`` names them) that give oneDNN bfloat16 kernels.
BFLOAT16_CPU_FEATURES = ("avx512_bf16", "amx_bf16")
#: Set to 1 to skip reading the CPU's flags, for a CPU whose flags the operating system does not
#: show (a virtual machine that masks them, a system without /proc/cpuinfo): one bfloat16 step of
#: a tiny network is tried instead, and if the kernels are missing that refuses, naming them.
ASSUME_BF16_ENV = "GLUON_MODERN_CNN_ASSUME_BF16"


class BFloat16Unsupported(ValueError):
    """bfloat16 training was asked for where it cannot run."""


def bfloat16_cpu_feature(flags: Optional[Iterable[str]] = None) -> Optional[str]:
    """The CPU feature that gives bfloat16 kernels here (``amx_bf16`` or ``avx512_bf16``), or None.

    Args:
        flags: the CPU's feature flags as ``/proc/cpuinfo`` names them; default ``None``, this
            machine's.
    """
    flags = cpu_flags() if flags is None else frozenset(flags)
    for feature in reversed(BFLOAT16_CPU_FEATURES):  # AMX first: the faster one
        if flags and feature in flags:
            return feature
    return None


def check_bfloat16_support(devices: Sequence = (), *, flags: Optional[Iterable[str]] = None,
                           environ=None) -> str:
    """Refuse, with the reason and the way out, unless bfloat16 training can run on ``devices``.

    Args:
        devices: the devices to train on (CPUs only; default none, the check of the CPU alone).
        flags: the CPU's feature flags; default ``None``, this machine's.
        environ: the environment read for :data:`ASSUME_BF16_ENV`; default ``None``,
            ``os.environ``.

    Returns:
        The CPU feature used (or ``"assumed"`` under :data:`ASSUME_BF16_ENV`, after a one-step
        probe).

    Raises:
        BFloat16Unsupported: for a GPU, an MXNet without oneDNN, or a CPU without the features.
    """
    mx = import_mxnet()
    environ = os.environ if environ is None else environ
    for device in devices:
        if device.device_type != "cpu":
            raise BFloat16Unsupported(
                f"bfloat16 training runs on the CPU only (MXNet 1.9's bfloat16 kernels are "
                f"oneDNN's); got {device}. Train on --device cpu, or in float32 on the GPU")
    if not mx.runtime.Features().is_enabled("MKLDNN"):
        raise BFloat16Unsupported("bfloat16 training needs MXNet built with oneDNN (MKLDNN); "
                                  "this MXNet was built without it. Install mxnet==1.9.1 from "
                                  "PyPI, or train in float32")
    if environ.get(ASSUME_BF16_ENV, "") == "1":
        probe_bfloat16_kernels()
        return "assumed"
    readable = cpu_flags() if flags is None else frozenset(flags)
    feature = bfloat16_cpu_feature(readable or ())
    if feature is not None:
        return feature
    where = ("has neither" if readable is not None
             else "cannot be checked (no /proc/cpuinfo to read its flags)")
    raise BFloat16Unsupported(
        f"bfloat16 training needs a CPU with {' or '.join(BFLOAT16_CPU_FEATURES)} (oneDNN's "
        f"bfloat16 kernels); this CPU ({cpu_model()}) {where}. Train in float32 (--dtype "
        f"float32), or on such a CPU (Intel Cooper Lake / Sapphire Rapids or later, AMD Zen 4 "
        f"or later). If "
        f"your CPU has one of them but hides the flag, set {ASSUME_BF16_ENV}=1")


@functools.lru_cache(maxsize=None)
def probe_bfloat16_kernels() -> None:
    """Train a tiny convolutional network for one step in bfloat16, or refuse with the reason
    (what :data:`ASSUME_BF16_ENV` relies on instead of the CPU's flags)."""
    mx = import_mxnet()
    from mxnet import autograd, gluon
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Conv2D(4, 3), gluon.nn.BatchNorm(), gluon.nn.Activation("relu"),
            gluon.nn.Dense(2))
    net.initialize()
    use_bfloat16(net, check=False)
    X = mx.np.ones((2, 1, 6, 6))
    try:
        with autograd.record():
            loss = net(X).sum()
        loss.backward()
        float(loss)
    except mx.base.MXNetError as err:
        raise BFloat16Unsupported(explain_bfloat16_failure(err)) from None


def explain_bfloat16_failure(err: BaseException) -> str:
    """A short message for an MXNet failure of a bfloat16 step.

    Args:
        err: the failure; a missing oneDNN kernel adds the CPU features it needs.
    """
    from ..runtime.compat import mxnet_error_summary
    summary = mxnet_error_summary(err).rstrip(".!")
    hint = (f"; oneDNN has no bfloat16 kernel for this CPU, which needs "
            f"{' or '.join(BFLOAT16_CPU_FEATURES)} (was {ASSUME_BF16_ENV}=1 set on a CPU "
            f"without them?)" if "primitive descriptor" in summary else "")
    return f"a bfloat16 training step failed: {summary}{hint}. Train in float32"


#: numpy-mode operators with an exact legacy equivalent that MXNet's bfloat16 lists know (the
#: numpy ones are in none of them): renamed before the pass, so that they stay in bfloat16.
_LEGACY_EQUIVALENTS = {"_npx_relu": ("relu", lambda attrs, n: {}),
                       "_npi_concatenate": ("Concat", lambda attrs, n: {
                           "dim": attrs.get("axis", "0"), "num_args": str(n)})}


def _bf16_lists():
    from mxnet.contrib.amp.lists import symbol_bf16 as lists
    return lists


def _known_ops() -> frozenset:
    """Operators MXNet's bfloat16 pass has a rule for (the others keep their inputs' type)."""
    lists = _bf16_lists()
    return frozenset({*lists.BF16_FUNCS, *lists.BF16_FP32_FUNCS, *lists.FP32_FUNCS,
                      *lists.WIDEST_TYPE_CASTS, *(op for op, *_ in lists.CONDITIONAL_FP32_FUNCS),
                      "amp_cast", "amp_multicast"})


def _rebuild(graph: dict, nodes: List[dict], new_id: Sequence[int]):
    """A symbol from ``graph`` with its nodes replaced by ``nodes`` (``new_id``: old -> new)."""
    mx = import_mxnet()
    graph = dict(graph, nodes=nodes, heads=[[new_id[n], i, v] for n, i, v in graph["heads"]],
                 arg_nodes=[i for i, node in enumerate(nodes) if node["op"] == "null"])
    graph.pop("node_row_ptr", None)  # derived; recomputed on loading
    return mx.sym.load_json(json.dumps(graph))


def _float32_islands(graph, data_names: Sequence[str]):
    """``graph`` (legacy, float32) with numpy operators renamed to their legacy equivalents and an
    ``amp_cast`` to float32 in front of every other operator the pass does not know, wherever
    its input may become bfloat16: those run in float32, since MXNet's CPU kernels for bfloat16
    are oneDNN's and the pass would otherwise hand them bfloat16 values they cannot take."""
    known = _known_ops()
    graph = json.loads(graph.tojson())
    nodes, new_id = [], []
    for node in graph["nodes"]:
        node = dict(node)
        if node["op"] in _LEGACY_EQUIVALENTS:
            op, attrs = _LEGACY_EQUIVALENTS[node["op"]]
            node["op"], node["attrs"] = op, attrs(node.get("attrs", {}), len(node["inputs"]))
        inputs = [[new_id[n], i, v] for n, i, v in node["inputs"]]
        if node["op"] not in known and node["op"] != "null":
            for k, (n, i, v) in enumerate(inputs):
                source = nodes[n]
                if source["op"] == "null" and source["name"] not in data_names:
                    continue  # a parameter: float32 already
                if source["op"] not in known and source["op"] != "null":
                    continue  # already in a float32 island
                nodes.append({"op": "amp_cast", "name": f"{node['name']}_in{k}_amp_cast_float32",
                              "attrs": {"dtype": "float32"}, "inputs": [[n, i, 0]]})
                inputs[k] = [len(nodes) - 1, 0, 0]
        node["inputs"] = inputs
        new_id.append(len(nodes))
        nodes.append(node)
    return _rebuild(graph, nodes, new_id)


def _entry_dtypes(graph, data_names: Sequence[str]):
    """(``graph``'s nodes as JSON, amp_cast included; for each node, its outputs' dtypes)."""
    internals = graph.get_internals()
    _, types, _ = internals.infer_type(**{name: "float32" for name in data_names})
    entries = dict(zip(internals.list_outputs(), (_dtype_name(t) for t in types)))
    nodes = json.loads(graph.tojson(remove_amp_cast=False))["nodes"]
    dtypes = []
    for node in nodes:
        if node["op"] == "null":
            dtypes.append([entries.get(node["name"])])
        else:
            pattern = re.compile(re.escape(node["name"]) + r"_output\d*$")
            dtypes.append([dtype for entry, dtype in entries.items() if pattern.match(entry)])
    return nodes, dtypes


def _at(values: list, index: int):
    return values[index] if index < len(values) else None


def _without_identity_casts(graph, data_names: Sequence[str]):
    """``graph`` without the ``amp_cast`` nodes whose input already has their type."""
    nodes, dtypes = _entry_dtypes(graph, data_names)
    full = json.loads(graph.tojson(remove_amp_cast=False))
    kept, new_id = [], []
    for node in nodes:
        inputs = [[new_id[n], i, v] for n, i, v in node["inputs"]]
        if node["op"] == "amp_cast":
            n, i, _ = node["inputs"][0]
            if _at(dtypes[n], i) == node["attrs"]["dtype"]:
                new_id.append(inputs[0][0])  # consumers read the input itself
                assert inputs[0][1] == 0, "a cast of a multi-output node's later output"
                continue
        new_id.append(len(kept))
        kept.append(dict(node, inputs=inputs))
    return _rebuild(full, kept, new_id)


def bfloat16_graph(out, data_names: Sequence[str]):
    """``out`` (a numpy-mode symbol: a twin's traced graph) rewritten by MXNet's AMP pass so that
    convolutions and dense layers compute in bfloat16; every output cast back to float32.

    Args:
        out: the traced graph.
        data_names: the names of its data inputs (everything else is a parameter).

    Raises:
        BFloat16Unsupported: when MXNet's pass cannot convert the graph.
    """
    mx = import_mxnet()
    from mxnet.contrib import amp
    data_names = list(data_names)
    with legacy_mode():
        graph = _float32_islands(out.as_nd_ndarray(), data_names)
        try:
            converted = amp.convert_symbol(graph, target_dtype="bfloat16",
                                           data_names=data_names, cast_optional_params=False)
            converted = _without_identity_casts(converted, data_names)
            _, out_types, _ = converted.infer_type(**{name: "float32" for name in data_names})
        except mx.base.MXNetError as err:
            raise BFloat16Unsupported(
                f"MXNet's bfloat16 pass cannot convert this graph "
                f"({_first_line(err)}); train it in float32") from None
        if out_types is not None and any(_dtype_name(t) != "float32" for t in out_types):
            # The last dense layer's bfloat16 output: the loss is computed in float32.
            converted = mx.sym.Group([
                head if _dtype_name(t) == "float32" else mx.sym.amp_cast(head, dtype="float32")
                for head, t in zip(converted, out_types)])
    return converted.as_np_ndarray()


def _first_line(err: BaseException) -> str:
    from ..runtime.compat import mxnet_error_summary
    return mxnet_error_summary(err).split("] ", 1)[-1].rstrip(".")


def _dtype_name(t) -> Optional[str]:
    import numpy
    if t is None:
        return None
    dtype = numpy.dtype(t)
    # numpy has no bfloat16; MXNet reports it as a 2-byte void type.
    return "bfloat16" if dtype.kind == "V" and dtype.itemsize == 2 else dtype.name


def uses_bfloat16(net) -> bool:
    """Whether :func:`use_bfloat16` was applied to ``net``.

    Args:
        net: any block.
    """
    return getattr(net, "_bfloat16", False)


def use_bfloat16(net, devices: Sequence = (), *, check: bool = True):
    """Train (and run) the hybridizable ``net`` in bfloat16 with float32 master weights.

    The Python switch behind ``train --dtype bfloat16`` and ``bench --dtype bfloat16``: call it on a
    ``_hybrid`` twin before its first forward pass (``hybridize()`` it, with or without
    ``static_alloc``, before or after). Its parameters stay float32, and so do their gradients,
    the trainer's updates, batch norm's statistics and the output. Applying it twice changes
    nothing.

    Args:
        net: a ``HybridBlock``; hybridized here if it is not yet.
        devices: the devices it will run on, checked by :func:`check_bfloat16_support` (default
            none: the CPU alone).
        check: check the CPU first (default); ``False`` skips that, for building graphs to inspect
            (:func:`operator_dtypes`) where they cannot run.

    Returns:
        ``net``.

    Raises:
        TypeError: for an ``nn.Block`` (use its ``_hybrid`` twin).
        BFloat16Unsupported: where bfloat16 cannot run or the graph cannot be converted.
    """
    mx = import_mxnet()
    if not isinstance(net, mx.gluon.HybridBlock):
        raise TypeError(f"bfloat16 runs the hybridized graph of a HybridBlock; "
                        f"{type(net).__name__} is an nn.Block (the book's code): use its _hybrid "
                        f"twin")
    if check:
        check_bfloat16_support(devices)
    if uses_bfloat16(net):
        return net
    trace = graph_tracer(net)  # bound before the override: the block's own (or its mode-aware) trace

    def _get_graph(*args):
        inputs, out = trace(*args)
        if not getattr(out, "_bfloat16", False):
            out = bfloat16_graph(out, [i.name for i in inputs])
            out._bfloat16 = True
            set_cached_graph(net, inputs, out)
        return inputs, out

    replace_graph_tracer(net, _get_graph)
    net._bfloat16 = True
    clear_cached_graph(net)  # a graph traced before now was float32
    try:  # tracing is symbolic and shape-free: convert now, so that a refusal comes before training
        for mode in (mx.autograd.train_mode, mx.autograd.predict_mode):
            with mode():
                _get_graph(mx.np.zeros((1,)))
    except BaseException:
        restore_graph_tracer(net)
        del net._bfloat16
        clear_cached_graph(net)
        raise
    if not is_hybridized(net):
        net.hybridize()
    return net


@dataclass(frozen=True)
class OperatorDtypes:
    """One operator of a graph with the types of what it reads and what it computes.

    Args:
        name: the operator node's name.
        op: the operator (e.g. ``Convolution``, ``amp_cast``).
        inputs: ``(input name, dtype)`` of each input.
        outputs: the dtype of each output.
    """

    name: str
    op: str
    inputs: Tuple[Tuple[str, str], ...]   # (input name, dtype)
    outputs: Tuple[str, ...]              # dtype of each output


def operator_dtypes(net) -> List[OperatorDtypes]:
    """Every operator of ``net``'s training graph with its input and output types, found by
    MXNet's type inference on the graph for float32 input (no kernel runs and no shape is needed,
    so this works on any CPU).

    Args:
        net: a hybridizable block, in bfloat16 or not.
    """
    mx = import_mxnet()
    with mx.autograd.train_mode():  # the graph is traced symbolically: the input's shape is unused
        inputs, out = net._get_graph(mx.np.zeros((1,)))
    with legacy_mode():
        nodes, dtypes = _entry_dtypes(out.as_nd_ndarray(), [i.name for i in inputs])
    names = [[node["name"]] if node["op"] == "null" else
             [f"{node['name']}_output{k if len(out_types) > 1 else ''}"
              for k in range(len(out_types))] for node, out_types in zip(nodes, dtypes)]
    table = []
    for node, out_types in zip(nodes, dtypes):
        if node["op"] == "null":
            continue
        ins = tuple((_at(names[n], i) or nodes[n]["name"], _at(dtypes[n], i))
                    for n, i, *_ in node["inputs"])
        table.append(OperatorDtypes(node["name"], node["op"], ins, tuple(out_types)))
    return table
