"""Export trained models for deployment: MXNet symbol + parameters, and ONNX.

Both formats hold the network's *prediction-mode* graph, traced symbolically from a
:class:`~mxnet.gluon.HybridBlock` (the registry's ``<name>_hybrid`` twins); the book's ``nn.Block``
versions run Python code per call and have no graph to export.

* :func:`export_mxnet` / :func:`load_mxnet`: ``prefix-symbol.json`` and ``prefix-0000.params``
  as written by ``HybridBlock.export`` and read by ``gluon.SymbolBlock.imports``, under
  ``npx.set_np()``.
* :func:`export_onnx`: an ONNX file written by MXNet 1.9.1's own exporter (``mxnet.onnx``). That
  exporter only knows the legacy operators, so the first call registers converters for the
  numpy-mode operators (``_npx_relu``, ``_npi_add``, ``_npi_concatenate``, ...) in its registry,
  mostly by reusing the translations of their legacy equivalents. Needs the ``onnx`` extra:
  ``pip install "gluon-modern-cnn[onnx]"``.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import (TYPE_CHECKING, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple,
                    Union)

from ..runtime.compat import activate_np, import_mxnet, mxnet_error_summary
from ..runtime.files import OutputError, describe_os_error, sync_file
from ..runtime.mxnet_internals import onnx_graph_converter, onnx_has_converter

if TYPE_CHECKING:
    import mxnet

__all__ = ["export_mxnet", "load_mxnet", "export_onnx", "ONNX_OPSETS", "DEFAULT_ONNX_OPSET"]

PathLike = Union[str, "os.PathLike[str]"]

#: ONNX opsets the export writes. MXNet 1.9.1's translations target opset 13 (the default) and
#: use them for newer opsets too; every exported model is validated against the opset it declares.
#: 19 is the newest opset onnxruntime 1.16 runs. Opset 12 is left out: MXNet's exporter validates
#: each graph against the newest opset of the installed onnx as well, which rejects the opset-12
#: forms of Squeeze, Unsqueeze and ReduceSum (axes as attributes).
ONNX_OPSETS = tuple(range(13, 20))
DEFAULT_ONNX_OPSET = 13

_INPUT_NAME = "data"  # the name HybridBlock.export gives a single input
_ONNX_HINT = 'Install the ONNX extra: pip install "gluon-modern-cnn[onnx]" (onnx, onnxruntime).'


# --------------------------------------------------------------------------------------------
# Tracing: the prediction-mode graph of a HybridBlock
# --------------------------------------------------------------------------------------------

def _check_input_shape(input_shape) -> Tuple[int, ...]:
    if (isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence)
            or not input_shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                       for d in input_shape)):
        raise ValueError(f"input_shape must be a tuple of positive integers including the batch "
                         f"dimension, such as (1, 1, 96, 96); got {input_shape!r}")
    return tuple(input_shape)


def _check_hybrid(net) -> None:
    mx = import_mxnet()
    if isinstance(net, mx.gluon.HybridBlock):
        return
    if isinstance(net, mx.gluon.Block):
        from ..models import list_models
        raise TypeError(
            f"cannot export a {type(net).__name__}: it is an nn.Block, whose forward is Python "
            f"code, so it has no symbolic graph. Export the model's hybridizable twin instead, "
            f"the registry name with the suffix '_hybrid' "
            f"({', '.join(list_models('*_hybrid'))}); it has the same parameter names, so "
            f"`twin.load_parameters(<file saved from this model>)` carries the trained weights "
            f"over.")
    raise TypeError(f"net must be a gluon HybridBlock; got {type(net).__name__}")


class _Traced(NamedTuple):
    block: "mxnet.gluon.SymbolBlock"  # the graph with net's parameters, ready for export()
    outputs: List  # the graph's output symbols


def _trace(net, shape: Tuple[int, ...]) -> _Traced:
    """The prediction-mode graph of ``net`` (a checked HybridBlock) as a SymbolBlock sharing
    its parameters.

    ``net`` itself is left as it was (hybridized or not, any cached graph kept): a Python
    ``if autograd.is_training()`` is decided here, in prediction mode, without freezing the
    user's own cached graph in that mode. Forward hooks of ``net`` are Python code around the
    graph, never part of it, exactly as with ``net.hybridize(); net.export(...)``.
    """
    mx = import_mxnet()
    activate_np()
    # The recorded shape lets load_mxnet check a parameter file against the graph; it is only a
    # hint, other batch sizes still run.
    data = mx.sym.var(_INPUT_NAME, shape=shape, dtype="float32").as_np_ndarray()
    try:
        with mx.autograd.predict_mode():
            # forward(), not __call__: pre-hooks (such as the registry's input-size check) expect
            # arrays, and hooks never enter the graph anyway.
            outputs = net.forward(data)
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    except (mx.base.MXNetError, AttributeError, TypeError) as err:
        raise ValueError(f"{type(net).__name__} cannot be traced symbolically "
                         f"({mxnet_error_summary(err)}); its hybrid_forward must compute with the "
                         f"F.np / F.npx operators only, "
                         f"without reading array values or shapes") from err
    ctx = _context_of(net)
    block = mx.gluon.SymbolBlock(outputs, data, params=net.collect_params())
    try:
        # Finishes any deferred initialization and builds the graph block.export() writes.
        with mx.autograd.predict_mode():
            block(mx.np.zeros(shape, ctx=ctx))
    except (mx.base.MXNetError, RuntimeError) as err:
        raise ValueError(f"{type(net).__name__} cannot run on inputs of shape {shape}: "
                         f"{mxnet_error_summary(err)}") from err
    return _Traced(block, outputs)


def _context_of(net):
    """The device of ``net``'s parameters; ValueError if some were never initialized."""
    mx = import_mxnet()
    contexts, uninitialized = [], []
    for param in net.collect_params().values():
        try:
            contexts += param.list_ctx()  # deferred initialization counts: the trace completes it
        except RuntimeError:
            uninitialized.append(param.name)
    if uninitialized:
        raise ValueError(f"{type(net).__name__} has uninitialized parameters "
                         f"({', '.join(uninitialized[:3])}, ...); call net.initialize() or "
                         f"net.load_parameters(file) before exporting it")
    return contexts[0] if contexts else mx.cpu()


# --------------------------------------------------------------------------------------------
# MXNet format
# --------------------------------------------------------------------------------------------

def _mxnet_files(prefix: PathLike, epoch: int) -> Tuple[Path, Path]:
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch <= 9999:
        raise ValueError(f"epoch must be an integer from 0 to 9999 (it is written as 4 digits); "
                         f"got {epoch!r}")
    prefix = os.fspath(prefix)
    return Path(f"{prefix}-symbol.json"), Path(f"{prefix}-{epoch:04d}.params")


def _refuse_overwrite(paths: Sequence[Path], overwrite: bool) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(existing)} already exist(s); choose another path or "
                              f"pass overwrite=True to replace it")


def _write_atomically(targets: Sequence[Path], write: Callable[[Path], Sequence[Path]]) -> None:
    """Write into a temporary folder beside ``targets`` and move the results in place, so that a
    failed export leaves no half-written files (and replaces nothing)."""
    parent = targets[0].parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=parent, prefix=".export-") as tmp:
            written = write(Path(tmp))
            for source, target in zip(written, targets):
                sync_file(source)
                os.replace(source, target)
    except OSError as err:
        raise OutputError(describe_os_error(err, targets[0]), err.errno, targets[0]) from None


def export_mxnet(net, prefix: PathLike, *, input_shape: Sequence[int], epoch: int = 0,
                 overwrite: bool = False) -> Tuple[Path, Path]:
    """Save ``net``'s prediction-mode graph and parameters as ``prefix-symbol.json`` and
    ``prefix-<epoch:04d>.params`` (the files of ``HybridBlock.export``).

    Args:
        net: an initialized ``HybridBlock`` (a book ``nn.Block`` is refused: export its twin).
        prefix: the files' path prefix.
        input_shape: the shape of one input batch, batch dimension included, e.g. (1, 1, 96, 96);
            the exported graph runs on any batch size.
        epoch: the number in the parameter file's name (default 0).
        overwrite: replace existing files (default False: they are refused).

    Returns:
        ``(symbol file, parameter file)``.

    Raises:
        TypeError: for an ``nn.Block``.
        ValueError: for a bad ``input_shape``.
        FileExistsError: when a file exists and ``overwrite`` is false.
    """
    _check_hybrid(net)
    shape = _check_input_shape(input_shape)
    symbol_file, params_file = _mxnet_files(prefix, epoch)
    _refuse_overwrite((symbol_file, params_file), overwrite)
    block = _trace(net, shape).block

    def write(tmp: Path) -> Tuple[Path, Path]:
        block.export(str(tmp / "model"), epoch=epoch)
        return _mxnet_files(tmp / "model", epoch)
    _write_atomically((symbol_file, params_file), write)
    return symbol_file, params_file


def load_mxnet(prefix: PathLike, *, epoch: int = 0,
               ctx: "Optional[mxnet.Context]" = None) -> "mxnet.gluon.SymbolBlock":
    """Load a model written by :func:`export_mxnet` (or ``HybridBlock.export``) as a
    ``gluon.SymbolBlock`` that takes and returns ``mxnet.np`` arrays.

    Args:
        prefix: the files' path prefix, as given to :func:`export_mxnet`.
        epoch: the number in the parameter file's name (default 0).
        ctx: the device to load onto; default ``None``, MXNet's default (the CPU).

    Raises:
        FileNotFoundError: when a file is missing (naming the files with that prefix).
        ValueError: for files that are not MXNet's, or a parameter file saved from another model
            (checked against the graph first, naming the parameters that do not fit).
    """
    mx = import_mxnet()
    activate_np()  # SymbolBlock.imports builds a numpy-mode block only under set_np()
    symbol_file, params_file = _mxnet_files(prefix, epoch)
    for path in (symbol_file, params_file):
        if not path.is_file():
            others = sorted(p.name for p in path.parent.glob(f"{Path(prefix).name}-*"))
            found = f" Files with this prefix: {', '.join(others)}." if others else ""
            raise FileNotFoundError(f"{path} does not exist; export_mxnet(net, prefix, ...) "
                                    f"writes prefix-symbol.json and "
                                    f"prefix-<epoch:04d>.params.{found}")
    try:
        symbol = mx.sym.load(str(symbol_file)).as_np_ndarray()
    except mx.base.MXNetError as err:
        raise ValueError(f"{symbol_file} is not an MXNet symbol file: "
                         f"{mxnet_error_summary(err)}") from err
    try:
        saved = mx.npx.load(str(params_file))
    except mx.base.MXNetError as err:
        raise ValueError(f"{params_file} is not an MXNet parameter file: "
                         f"{mxnet_error_summary(err)}") from err
    if not isinstance(saved, dict):
        raise ValueError(f"{params_file} holds unnamed arrays, not named parameters as "
                         f"HybridBlock.export writes them")
    saved = {key.split(":", 1)[-1]: value for key, value in saved.items()}  # drop arg:/aux:
    input_names = _check_params_fit(symbol, saved, symbol_file, params_file)
    with warnings.catch_warnings():
        # imports() leaves the input's dtype to the saved parameters and warns about it.
        warnings.filterwarnings("ignore", message="Cannot decide type")
        return mx.gluon.SymbolBlock.imports(str(symbol_file), input_names, str(params_file),
                                            ctx=ctx)


def _check_params_fit(symbol, saved: Dict, symbol_file: Path, params_file: Path) -> List[str]:
    """Return the graph's input names; raise ValueError if ``saved`` does not fit ``symbol``."""
    mx = import_mxnet()
    needed = symbol.list_arguments() + symbol.list_auxiliary_states()
    missing = [n for n in needed if n not in saved and not re.fullmatch(r"data\d*", n)]
    extra = [n for n in saved if n not in needed]
    mismatch = (f"{params_file} does not belong to the graph in {symbol_file} (saved from "
                f"another model?)")
    if missing or extra:
        details = [f"missing {len(missing)} parameters such as {', '.join(missing[:3])}"
                   ] if missing else []
        details += [f"{len(extra)} unused ones such as {', '.join(extra[:3])}"] if extra else []
        raise ValueError(f"{mismatch}: {'; '.join(details)}")
    try:
        # Uses the input shape export_mxnet records in the graph, so every layer is checked.
        # MXNet prints all argument shapes to stdout when inference fails; the error says enough.
        with contextlib.redirect_stdout(io.StringIO()):
            symbol.infer_shape_partial(**{n: saved[n].shape for n in needed if n in saved})
    except mx.base.MXNetError as err:
        raise ValueError(f"{mismatch}: {mxnet_error_summary(err)}") from err
    return [n for n in symbol.list_inputs() if n not in saved]


# --------------------------------------------------------------------------------------------
# ONNX format
# --------------------------------------------------------------------------------------------

def export_onnx(net, path: PathLike, *, input_shape: Sequence[int],
                opset: int = DEFAULT_ONNX_OPSET, dynamic_batch: bool = False,
                overwrite: bool = False) -> Path:
    """Convert ``net``'s prediction-mode graph to an ONNX file with MXNet's exporter.

    The model has one float32 input named ``data``. The model is checked with ``onnx.checker``
    before it is written.

    Args:
        net: an initialized ``HybridBlock`` (a book ``nn.Block`` is refused: export its twin).
        path: the ONNX file to write.
        input_shape: the input's shape, batch dimension included, e.g. (1, 1, 96, 96).
        opset: the ONNX opset, one of :data:`ONNX_OPSETS` (13 to 19; default
            :data:`DEFAULT_ONNX_OPSET`); reductions other than sums over given axes
            (``x.mean(axis=0)``, ``x.max(axis=1)``) need opset 18 or later.
        dynamic_batch: leave the input's first dimension open (default False).
        overwrite: replace an existing file (default False: it is refused).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ImportError: without the ``onnx`` package (the ``onnx`` extra).
        NotImplementedError: for an operator MXNet's exporter cannot translate at ``opset``.
        TypeError, ValueError, FileExistsError: as :func:`export_mxnet`, and for an unknown
            ``opset``.
    """
    if opset not in ONNX_OPSETS:
        raise ValueError(f"opset must be one of {ONNX_OPSETS} (from MXNet 1.9.1's translations "
                         f"to onnxruntime 1.16's newest); got {opset!r}")
    _check_hybrid(net)
    shape = _check_input_shape(input_shape)
    path = Path(path)
    _refuse_overwrite((path,), overwrite)
    onnx = _import_onnx()
    graph_converter = onnx_graph_converter()
    symbol, params = _legacy_graph(_trace(net, shape))
    _check_convertible(symbol, opset, graph_converter)
    # The exporter's graph builder, not mx.onnx.export_model(): that stamps the installed onnx's
    # newest opset (20 for onnx 1.15, which onnxruntime 1.16 cannot load) whatever the
    # translations target.
    with warnings.catch_warnings():
        # MXNet's exporter uses onnx.mapping, which onnx 1.15 deprecates: one warning per weight.
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*mapping")
        graph = graph_converter().create_onnx_graph_proto(
            symbol, params, in_shapes=[shape], in_types=[onnx.TensorProto.FLOAT],
            opset_version=opset, dynamic=dynamic_batch,
            dynamic_input_shapes=[(None,) + shape[1:]] if dynamic_batch else None)
    # The exporter lists every weight as a graph input too, which makes them overridable at run
    # time and stops onnxruntime from folding constants (it warns once per weight).
    weights = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in weights]
    del graph.input[:]
    graph.input.extend(inputs)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)],
                                   producer_name="gluon-modern-cnn")
    onnx.checker.check_model(model, full_check=True)

    def write(tmp: Path) -> Tuple[Path]:
        onnx.save_model(model, str(tmp / "model.onnx"))
        return (tmp / "model.onnx",)
    _write_atomically((path,), write)
    return path


def _import_onnx():
    import_mxnet()  # numpy aliases first: onnx imports numpy too
    try:
        import onnx
    except ImportError as err:
        raise ImportError(f"export_onnx needs the onnx package ({err}). {_ONNX_HINT}") from err
    return onnx


def _legacy_graph(traced: _Traced):
    """The traced graph as a legacy Symbol (what the exporter walks) and its parameter arrays.

    A FullyConnected layer called without ``flatten`` flattens its input (MXNet's default), but
    the exporter's translation reads a missing ``flatten`` as False, so the default is written in.
    (BatchNorm's ``fix_gamma`` needs nothing: MXNet writes the ones into gamma itself, during the
    trace's forward pass.)
    """
    mx = import_mxnet()
    symbol = mx.sym.Group([out.as_nd_ndarray() for out in traced.outputs])
    params = {p.name: p.data(p.list_ctx()[0]) for p in traced.block.collect_params().values()}
    graph = json.loads(symbol.tojson())
    for node in graph["nodes"]:
        if node["op"] == "FullyConnected":
            node.setdefault("attrs", {}).setdefault("flatten", "True")
    return mx.sym.load_json(json.dumps(graph)), params


def _check_convertible(symbol, opset: int, graph_converter) -> None:
    """Raise NotImplementedError naming every operator the exporter cannot translate."""
    unsupported: Dict[str, List[str]] = {}
    for node in json.loads(symbol.tojson())["nodes"]:
        op = node["op"]
        if op != "null" and not onnx_has_converter(graph_converter, op, opset):
            unsupported.setdefault(op, []).append(node["name"])
    if unsupported:
        listing = "; ".join(f"{op} (used by {', '.join(names[:3])})"
                            for op, names in sorted(unsupported.items()))
        raise NotImplementedError(
            f"ONNX export (opset {opset}) has no converter for the operator(s) {listing}. "
            f"Rewrite those layers with supported operators, or export to the MXNet format with "
            f"export_mxnet().")
