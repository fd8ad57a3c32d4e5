"""Hybridizable layers that depend on the autograd mode and keep state (moving statistics).

Two MXNet 1.9 facts make such a ``HybridBlock`` go wrong once hybridized:

* the graph is traced once, so a Python ``if autograd.is_training()`` in ``hybrid_forward`` is
  frozen at the mode of the first call;
* a cached graph returns outputs only, so it cannot assign new state to Python attributes.

:class:`ModeAwareHybridBlock` fixes both for itself and for every child it inlines: it keeps one
cached graph per ``autograd.is_training()`` value, and a layer calls
``update_state(F, param, value)`` to say "after this call, ``param`` holds ``value``".
Imperatively the write happens at once; while a mode-aware block traces its graph, the value
becomes an extra output of the graph, which the block copies into the ``Parameter`` after each
call. The outermost hybridized block must be mode-aware; plain containers in between are inlined
into its graph and their stateful children report to it. A plain hybridized parent is refused
with an error saying so, instead of silently freezing the mode.

MXNet 1.9 offers nothing built in for this: no in-graph "is training" predicate, and in-graph
mutation only inside specific operators (``BatchNorm``'s auxiliary states). The maintainers'
advice for the frozen mode (apache/mxnet#16926) is two instances sharing parameters, one per mode,
which :class:`ModeAwareHybridBlock` automates.
"""
from __future__ import annotations

import contextlib
import sys
import threading
from typing import Iterator, List, Optional

from mxnet import autograd, symbol
from mxnet.gluon import HybridBlock, Parameter, nn

from ..runtime.mxnet_internals import CACHED_GRAPH_ATTRS, fresh_graph_cache

__all__ = ["update_state", "require_mode_aware", "ModeAwareHybridBlock",
           "ModeAwareHybridSequential"]

# Per thread, the update lists of the mode-aware blocks currently tracing (innermost last).
_TRACING = threading.local()

def _tracing_stack() -> List[list]:
    if not hasattr(_TRACING, "stack"):
        _TRACING.stack = []
    return _TRACING.stack


@contextlib.contextmanager
def _collect_updates() -> Iterator[list]:
    stack = _tracing_stack()
    updates: list = []
    stack.append(updates)
    try:
        yield updates
    finally:
        stack.pop()


def _plain_block_tracing() -> Optional[HybridBlock]:
    """The hybridized block whose graph is being traced right now, when it is not mode-aware.

    Calling a block on symbols directly (shape inference, export) builds a symbol in the current
    mode and caches nothing: that is fine. Only a cached graph (``HybridBlock._get_graph``) freezes
    the mode, so that is the frame to look for.
    """
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is HybridBlock._get_graph.__code__:
            block = frame.f_locals.get("self")
            return None if isinstance(block, ModeAwareHybridBlock) else block
        frame = frame.f_back
    return None


def _refuse_plain_parent(what: str) -> None:
    parent = _plain_block_tracing()
    if parent is not None:
        raise RuntimeError(
            f"{what}, which the cached graph of the hybridized {type(parent).__name__} "
            f"'{parent.name}' would freeze: make the outermost hybridized block a "
            "ModeAwareHybridBlock (for example gluon_modern_cnn.ModeAwareHybridSequential instead "
            "of nn.HybridSequential); it keeps one graph per autograd mode and writes the state "
            "back after each call.")


def require_mode_aware(F, block: HybridBlock) -> None:
    """Refuse to be traced into a cached graph that would freeze the autograd mode.

    Call it first in the ``hybrid_forward`` of a layer whose graph depends on
    ``autograd.is_training()``: a plain hybridized parent traced in prediction mode would
    otherwise silently reuse that graph for training (and vice versa).

    Args:
        F: ``hybrid_forward``'s ``F``.
        block: the block that needs it (for the message).
    """
    if F is symbol and not _tracing_stack():
        _refuse_plain_parent(f"{block.name} depends on the autograd mode")


def update_state(F, param: Parameter, value) -> None:
    """Make ``param`` hold ``value`` after the current forward pass.

    Call it from ``hybrid_forward`` with the ``F`` it received. Imperatively (``F`` is
    ``mxnet.ndarray``) the value is copied into ``param`` at once, outside the autograd graph.
    While a :class:`ModeAwareHybridBlock` traces its graph, the value becomes an output of that
    graph, copied into ``param`` after every call. A symbol built by calling a block on symbols
    directly (shape inference, export) computes the outputs only.

    Args:
        F: ``hybrid_forward``'s ``F``.
        param: the Parameter that holds the state.
        value: its new value (an array or a symbol).
    """
    if not isinstance(param, Parameter):
        raise TypeError(f"update_state needs a gluon Parameter, got {type(param).__name__}: pass "
                        "the layer's attribute (self.moving_mean), not the array hybrid_forward "
                        "received.")
    if F is not symbol:
        _assign(param, value)
        return
    stack = _tracing_stack()
    if not stack:
        _refuse_plain_parent(f"Parameter '{param.name}' is state updated in the forward pass")
        return
    updates = stack[-1]
    if any(known is param for known, _ in updates):
        raise RuntimeError(f"Parameter '{param.name}' is updated twice in one graph (one stateful "
                           "layer used twice?); give each use its own layer.")
    updates.append((param, value))


def _assign(param: Parameter, value) -> None:
    """Copy ``value`` into ``param``'s array on ``value``'s device, outside the autograd graph."""
    if value.shape != param.shape:
        raise ValueError(f"new state for Parameter '{param.name}' has shape {value.shape} but the "
                         f"Parameter has {param.shape}: reshape it first (npx.reshape_like).")
    with autograd.pause():
        param.data(value.ctx)[:] = value


class ModeAwareHybridBlock(HybridBlock):
    """A ``HybridBlock`` whose hybridized form follows ``autograd.is_training()`` and keeps state.

    Subclass it instead of ``HybridBlock`` (or put it first among the bases, as
    :class:`ModeAwareHybridSequential` does). Only the outermost hybridized block needs it: its
    children are inlined into its graph and report their :func:`update_state` calls to it.

    Args:
        prefix, params: as ``HybridBlock``'s.
    """

    def __init__(self, prefix=None, params=None):
        self._mode_caches: dict = {}
        self._cache_mode = False
        self._state_params: tuple = ()
        super().__init__(prefix=prefix, params=params)

    def _select_mode(self, training: bool) -> None:
        """Swap in the cached graph (and its bookkeeping) of ``training`` mode."""
        if training == self._cache_mode:
            return
        self._mode_caches[self._cache_mode] = {name: getattr(self, name) for name in CACHED_GRAPH_ATTRS}
        for name, value in self._mode_caches.pop(training, fresh_graph_cache()).items():
            setattr(self, name, value)
        self._cache_mode = training

    def _clear_cached_op(self):
        super()._clear_cached_op()
        self._mode_caches = {}
        self._state_params = ()
        self._out_format = None

    def _get_graph(self, *args):
        self._select_mode(autograd.is_training())
        if self._cached_graph:
            return self._cached_graph
        with _collect_updates() as updates:
            inputs, out = super()._get_graph(*args)
        if updates:
            out = symbol.Group([out] + [value for _, value in updates], create_fn=type(out))
            self._cached_graph = inputs, out
        self._state_params = tuple(param for param, _ in updates)
        # Regrouping the graph's outputs then yields (outputs, [new state, ...]).
        self._out_format = [self._out_format, [0] * len(updates)]
        return self._cached_graph

    def _call_cached_op(self, *args):
        self._select_mode(autograd.is_training())
        out, new_state = super()._call_cached_op(*args)
        for param, value in zip(self._state_params, new_state):
            _assign(param, value)
        return out

    def export(self, path, epoch=0, remove_amp_cast=True):
        """Export the prediction-mode graph (run one forward pass in prediction mode first)."""
        self._select_mode(False)
        if not self._cached_graph:
            raise RuntimeError(f"{self.name} has no prediction-mode graph yet: hybridize() it and "
                               "call it once outside autograd.record() before export().")
        return super().export(path, epoch=epoch, remove_amp_cast=remove_amp_cast)


class ModeAwareHybridSequential(ModeAwareHybridBlock, nn.HybridSequential):
    """``nn.HybridSequential`` that switches graphs with the autograd mode and keeps layer state.

    Args:
        prefix, params: as ``HybridSequential``'s.
    """
