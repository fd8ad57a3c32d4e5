"""Saving and loading what a trained network holds, and training checkpoints, written atomically.

``Block.save_parameters`` stores Parameters only. The book's from-scratch ``BatchNorm`` (section
7.5) keeps its moving statistics as plain array attributes, so a network saved that way and loaded
again predicts with a moving variance of 0. :func:`save_parameters` stores those array attributes
too, under the same structural names a Parameter would have (``1.moving_mean``), so the file also
loads into the hybridizable twin, where the statistics are Parameters.

A training checkpoint (:func:`save_checkpoint`) is one zip archive holding everything a run needs to
continue: the parameters (as :func:`save_parameters` writes them), the trainer's optimizer state,
and a JSON manifest with the model, the number of finished epochs, the settings and the history. It
is written to a temporary file beside its target and renamed over it, so at every moment the target
is either the previous complete checkpoint or the new complete one, and zip's CRC-32 checksums
expose a file damaged later.
"""
from __future__ import annotations

import json
import os
import signal
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import (Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple,
                    Union)

import mxnet as mx
import numpy as onp
from mxnet import gluon, npx

from ..runtime.compat import mxnet_error_summary
from ..runtime.files import atomic_write, remove_stale_temporaries
from ..runtime.mxnet_internals import (has_data, has_default_storage, parameters_by_name,
                                       reorder_optimizer_states, trainer_parameters,
                                       waits_for_deferred_init)
from ..runtime.devices import device_spec
from .loop import Callback, History

__all__ = ["array_states", "network_state", "save_parameters", "load_parameters", "atomic_write",
           "CheckpointError", "Checkpoint", "save_checkpoint", "load_checkpoint",
           "remove_stale_temporaries", "parameters_sidecar", "read_sidecar", "EpochCheckpointer",
           "CHECKPOINT_FORMAT",
           "FAULT_ENV_VAR"]

PathLike = Union[str, os.PathLike]

#: Identifies the manifest of a checkpoint archive; ``version`` changes with its layout.
CHECKPOINT_FORMAT = {"format": "gluon-modern-cnn training checkpoint", "version": 1}
_MANIFEST, _PARAMETERS, _TRAINER = "checkpoint.json", "model.params", "trainer.states"

#: Test-only fault injection: ``kill-before-rename:N`` makes the process kill itself (SIGKILL) once
#: the checkpoint of epoch N is completely written to its temporary file, just before the rename.
FAULT_ENV_VAR = "GLUON_MODERN_CNN_TEST_FAULT"


class CheckpointError(ValueError):
    """A parameter or checkpoint file that does not fit the model, or a damaged file."""


def _blocks_with_prefix(block: gluon.Block, prefix: str = "") -> Iterator[Tuple[str, gluon.Block]]:
    yield prefix, block
    for name, child in block._children.items():
        yield from _blocks_with_prefix(child, f"{prefix}{name}.")


def array_states(net: gluon.Block) -> Dict[str, Tuple[gluon.Block, str]]:
    """State a block keeps in plain array attributes (not Parameters), by structural name.

    Args:
        net: the network; its blocks' public array attributes are collected (e.g. the scratch
            BatchNorm's ``moving_mean``).

    Returns:
        ``{structural name: (block, attribute name)}``.
    """
    states = {}
    for prefix, block in _blocks_with_prefix(net):
        for attr, value in vars(block).items():
            if isinstance(value, (mx.np.ndarray, mx.nd.NDArray)) and not attr.startswith("_"):
                states[prefix + attr] = (block, attr)
    return states


# ---------------------------------------------------------------------------------------------
# Parameter files
# ---------------------------------------------------------------------------------------------

def _parameter_arrays(net: gluon.Block) -> Dict[str, mx.np.ndarray]:
    arrays = {}
    for name, param in parameters_by_name(net).items():
        if waits_for_deferred_init(param):
            raise CheckpointError(f"parameter {name} is not initialized yet (its shape is inferred "
                                  "at the first forward pass); run the network once before saving")
        arrays[name] = param.data(param.list_ctx()[0]).copyto(mx.cpu())
    return arrays


def network_state(net: gluon.Block) -> Dict[str, mx.np.ndarray]:
    """Everything ``net`` holds, by structural name, copied to the CPU: its parameters (batch-norm
    running statistics included) and its array-held state (the scratch BatchNorm's statistics).

    Args:
        net: the network; every parameter must be initialized.

    Raises:
        CheckpointError: for a parameter whose shape is still deferred to the first forward pass.
    """
    arrays = _parameter_arrays(net)
    for name, (block, attr) in array_states(net).items():
        arrays.setdefault(name, getattr(block, attr).as_np_ndarray().copyto(mx.cpu()))
    return arrays


def parameters_sidecar(path: PathLike) -> Path:
    """The JSON file beside a parameter file that says what the parameters are for
    (``model.params`` -> ``model.params.json``).

    Args:
        path: the parameter file.
    """
    path = Path(path)
    return path.with_name(path.name + ".json")


def save_parameters(net: gluon.Block, path: PathLike, *,
                    about: Optional[Mapping[str, Any]] = None) -> Path:
    """Save ``net``'s parameters and array-held state (e.g. the scratch BatchNorm's moving
    statistics) to ``path`` atomically.

    Load with :func:`load_parameters` or, for the parameters alone,
    ``net.load_parameters(path, ignore_extra=True)``.

    Args:
        net: the network; every parameter must be initialized.
        path: the parameter file to write.
        about: what the parameters are for (e.g. the model's name and the input size it was
            trained at), written beside them (:func:`parameters_sidecar`) first, so that the file
            is used correctly wherever it is moved with it; default ``None``, no sidecar.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    arrays = network_state(net)
    if about is not None:  # first: parameters never exist without what they are for
        atomic_write(parameters_sidecar(path), lambda tmp: Path(tmp).write_text(
            json.dumps(dict(about), indent=2)))
    return atomic_write(path, lambda tmp: npx.save(tmp, arrays))


def read_sidecar(path: PathLike) -> Optional[Dict[str, Any]]:
    """What :func:`save_parameters` wrote beside ``path``, or None when there is nothing.

    Args:
        path: the parameter file (not the sidecar); a missing or unreadable sidecar gives None.
    """
    try:
        about = json.loads(parameters_sidecar(path).read_text())
    except (OSError, ValueError):
        return None
    return about if isinstance(about, dict) else None


def _named_arrays(loaded, source: str) -> Dict[str, mx.np.ndarray]:
    if not isinstance(loaded, dict):
        raise CheckpointError(f"{source} holds unnamed arrays, not a network's parameters")
    return {k.split(":", 1)[1] if k.startswith(("arg:", "aux:")) else k: v.as_np_ndarray()
            for k, v in loaded.items()}


def _read(path: PathLike) -> Dict[str, mx.np.ndarray]:
    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"{path} is a folder; give the parameter file in it, e.g. "
                                f"{path / 'model.params'}")
    if not path.is_file():
        raise FileNotFoundError(f"parameter file {path} does not exist")
    try:
        loaded = npx.load(str(path))
    except mx.base.MXNetError as err:
        raise CheckpointError(f"{path} is not a readable MXNet parameter file (damaged or "
                              f"truncated?): {mxnet_error_summary(err)}") from None
    return _named_arrays(loaded, str(path))


def load_parameters(net: gluon.Block, path: PathLike, *, ctx=None,
                    what: str = "model") -> None:
    """Load a file written by :func:`save_parameters` (or ``save_parameters`` of Gluon) into
    ``net``.

    Args:
        net: the network; every parameter and array state must be present in the file with its
            shape.
        path: the parameter file.
        ctx: the device(s) to load onto; default ``None``, where ``net``'s initialized parameters
            are (else the CPU).
        what: what ``net`` is called in error messages (default ``"model"``).

    Raises:
        FileNotFoundError: when ``path`` is missing or a folder.
        CheckpointError: naming the mismatch (typically a file of another model), NaN or infinite
            values, or a damaged file.
    """
    _assign(net, _read(path), source=str(path), ctx=ctx, what=what)


def _assign(net: gluon.Block, arrays: Dict[str, mx.np.ndarray], *, source: str, ctx,
            what: str) -> None:
    params = parameters_by_name(net)
    states = {k: v for k, v in array_states(net).items() if k not in params}
    expected = set(params) | set(states)
    missing = sorted(n for n in params if n not in arrays)
    unexpected = sorted(set(arrays) - expected)
    wrong = sorted(f"{n}: file {tuple(arrays[n].shape)}, {what} {p.shape}"
                   for n, p in params.items()
                   if n in arrays and not _shape_fits(tuple(arrays[n].shape), p.shape))
    if missing or unexpected or wrong:
        problems = []
        if missing:
            problems.append(f"missing {_few(missing)}")
        if unexpected:
            problems.append(f"not in the {what}: {_few(unexpected)}")
        if wrong:
            problems.append(f"shapes differ: {_few(wrong)}")
        raise CheckpointError(f"{source} does not fit this {what} ({'; '.join(problems)}); "
                              f"is it a file of another model or configuration?")
    bad = [name for name, array in arrays.items() if name in expected
           and onp.issubdtype(array.dtype, onp.floating)
           and not onp.isfinite(array.asnumpy()).all()]
    if bad:
        raise CheckpointError(f"{source} holds NaN or infinite values in {_few(sorted(bad))}; "
                              f"the run that wrote it diverged or the file is damaged: use "
                              f"parameters of an earlier epoch or train again")
    ctx = ctx or _contexts(net)
    for name, param in params.items():
        param._load_init(arrays[name].as_nd_ndarray() if not _np(param) else arrays[name], ctx,
                         cast_dtype=False, dtype_source="current")
    for name, (block, attr) in states.items():
        if name in arrays:
            setattr(block, attr, arrays[name].copyto(ctx[0] if isinstance(ctx, list) else ctx))


def _shape_fits(shape, expected) -> bool:
    """Whether ``shape`` fits a parameter's shape, whose unknown (deferred) dimensions are <= 0."""
    return expected is None or (len(shape) == len(expected)
                                and all(e <= 0 or s == e for s, e in zip(shape, expected)))


def _np(param) -> bool:
    return has_default_storage(param) and mx.util.is_np_array()


def _contexts(net: gluon.Block):
    for param in net.collect_params().values():
        if has_data(param):
            return param.list_ctx()
    return [mx.cpu()]


def _few(names: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# ---------------------------------------------------------------------------------------------
# Training checkpoints
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Checkpoint:
    """A loaded training checkpoint: the state of a run after ``epoch`` finished epochs.

    The optimizer state is a pickle (``Trainer.save_states``), as in MXNet's own checkpoints:
    resume only from checkpoints you trust. Built by :func:`load_checkpoint`.

    Args:
        path: the checkpoint file.
        model: the registered name of the model trained.
        epoch: finished epochs.
        settings: the run's settings (``RunSettings.to_dict()``).
        history: the run's :class:`History` so far.
        devices: device specs such as ``"cpu0"``, ``"gpu1"``.
        extra: anything else the run saved (default empty).
        trainer_order: the structural names of the parameters in the trainer's order (its states
            are by position).
    """

    path: Path
    model: str
    epoch: int                    # finished epochs
    settings: Dict[str, Any]      # the run's settings (``RunSettings.to_dict()``)
    history: History
    devices: Tuple[str, ...]      # device specs such as "cpu0", "gpu1"
    extra: Dict[str, Any] = field(default_factory=dict)
    #: The structural names of the parameters in the trainer's order (its states are by position).
    trainer_order: Tuple[str, ...] = ()
    _parameters: bytes = field(default=b"", repr=False)
    _trainer_states: bytes = field(default=b"", repr=False)

    def parameters(self) -> Dict[str, mx.np.ndarray]:
        """The saved arrays by structural name (parameters and array-held state)."""
        try:
            loaded = mx.nd.load_frombuffer(self._parameters)
        except mx.base.MXNetError as err:
            raise CheckpointError(f"the parameters in {self.path} are damaged: "
                                  f"{mxnet_error_summary(err)}") from None
        return _named_arrays(loaded, f"{self.path} ({_PARAMETERS})")

    def load_parameters(self, net: gluon.Block, *, ctx=None) -> None:
        """Load the saved parameters and array-held state into ``net`` (on ``ctx``)."""
        _assign(net, self.parameters(), source=f"the checkpoint {self.path} (of {self.model})",
                ctx=ctx, what="network")

    def load_trainer_states(self, trainer: gluon.Trainer, *, net: gluon.Block) -> None:
        """Restore the optimizer's state (``Trainer.load_states``) for ``net``'s parameters, which
        must be initialized (load them first). Each parameter gets its own state even when the
        trainer orders the parameters differently (Gluon sorts them by global names, which
        depend on what the process built before)."""
        order = tuple(_trainer_order(trainer, net))
        states = self._trainer_states
        if order != self.trainer_order:
            if sorted(order) != sorted(self.trainer_order) or len(set(order)) != len(order):
                raise CheckpointError(
                    f"the trainer's parameters are not those of {self.model}'s checkpoint "
                    f"{self.path} ({_first_difference(sorted(order), sorted(self.trainer_order))}"
                    f"), so its optimizer state cannot be restored: build the trainer over the "
                    f"whole network's parameters, as the run did")
            position = {name: i for i, name in enumerate(order)}
            states = reorder_optimizer_states(states, {
                i: position[name] for i, name in enumerate(self.trainer_order)})
        with tempfile.TemporaryDirectory(prefix="gluon-modern-cnn-") as tmp:
            path = Path(tmp) / _TRAINER
            path.write_bytes(states)
            trainer.load_states(str(path))


def save_checkpoint(path: PathLike, *, net: gluon.Block, trainer: gluon.Trainer, model: str,
                    epoch: int, settings: Mapping[str, Any], history: History,
                    devices: Sequence[str], extra: Optional[Mapping[str, Any]] = None) -> Path:
    """Write the checkpoint of a run after ``epoch`` finished epochs to ``path`` (one zip archive),
    atomically: an existing checkpoint is replaced only by a complete new one.

    Args:
        path: the checkpoint file.
        net: the network; every parameter must be initialized.
        trainer: its trainer, whose optimizer state is saved.
        model: the registered name of the model.
        epoch: finished epochs.
        settings: the run's settings (JSON-serializable).
        history: the run's :class:`History` so far.
        devices: the device specs trained on.
        extra: anything else to keep (JSON-serializable); default ``None``, nothing.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    manifest = {**CHECKPOINT_FORMAT, "model": model, "epoch": epoch, "settings": dict(settings),
                "devices": list(devices), "history": history.to_dict(),
                "trainer_order": _trainer_order(trainer, net), "extra": dict(extra or {})}
    arrays = network_state(net)
    with tempfile.TemporaryDirectory(prefix="gluon-modern-cnn-") as tmp:
        params_file, trainer_file = Path(tmp) / _PARAMETERS, Path(tmp) / _TRAINER
        npx.save(str(params_file), arrays)
        trainer.save_states(str(trainer_file))

        def write(target: str) -> None:
            # Stored, not compressed: parameters barely compress and a checkpoint is written every
            # epoch. Each member still carries a CRC-32 that reading checks.
            with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
                archive.write(params_file, _PARAMETERS)
                archive.write(trainer_file, _TRAINER)
                archive.writestr(_MANIFEST, json.dumps(manifest, indent=2))
        return atomic_write(path, write, before_replace=lambda tmp: _injected_fault(epoch))


def _trainer_order(trainer: gluon.Trainer, net: gluon.Block) -> List[str]:
    """Structural names of ``trainer``'s parameters in its order (MXNet
    keeps optimizer states by position in it)."""
    names = {id(param): name for name, param in parameters_by_name(net).items()}
    return [names.get(id(param), param.name) for param in trainer_parameters(trainer)]


def _first_difference(found: Sequence[str], expected: Sequence[str]) -> str:
    for position, (a, b) in enumerate(zip(found, expected)):
        if a != b:
            return f"position {position}: {a}, the checkpoint's {b}"
    return f"{len(found)} parameters, the checkpoint's {len(expected)}"


def _injected_fault(epoch: int) -> None:
    if os.environ.get(FAULT_ENV_VAR) == f"kill-before-rename:{epoch}":
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def load_checkpoint(path: PathLike) -> Checkpoint:
    """Read and check a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: the checkpoint file.

    Raises:
        FileNotFoundError: when there is no such file.
        CheckpointError: for a damaged or foreign file (or a folder), saying what is wrong with it.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file; move it away (a run "
                              f"writes its checkpoint under that name)")
    if not path.is_file():
        raise FileNotFoundError(f"there is no checkpoint {path}")

    def damaged(problem: str) -> CheckpointError:
        return CheckpointError(f"the checkpoint {path} is damaged ({problem}); the run cannot "
                               f"continue from it. Start it again (train --overwrite) or restore "
                               f"the file from a backup")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [n for n in (_MANIFEST, _PARAMETERS, _TRAINER) if n not in names]
            if missing:
                raise damaged(f"it lacks {', '.join(missing)}")
            # read() checks every member's CRC-32.
            manifest_text, parameters, trainer_states = (archive.read(n) for n in (
                _MANIFEST, _PARAMETERS, _TRAINER))
    except (zipfile.BadZipFile, EOFError) as err:  # not a zip, truncated, or a CRC mismatch
        raise damaged(str(err)) from None
    try:
        manifest = json.loads(manifest_text)
    except ValueError as err:
        raise damaged(f"its {_MANIFEST} is not JSON: {err}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != CHECKPOINT_FORMAT["format"]:
        raise CheckpointError(f"{path} is not a gluon-modern-cnn training checkpoint")
    if manifest.get("version") != CHECKPOINT_FORMAT["version"]:
        raise CheckpointError(f"{path} is a checkpoint of format version "
                              f"{manifest.get('version')!r}; this version of gluon-modern-cnn "
                              f"reads version {CHECKPOINT_FORMAT['version']}")
    try:
        return Checkpoint(path=path, model=str(manifest["model"]), epoch=int(manifest["epoch"]),
                          settings=dict(manifest["settings"]),
                          history=History.from_dict(manifest["history"]),
                          devices=tuple(str(d) for d in manifest["devices"]),
                          extra=dict(manifest.get("extra", {})),
                          trainer_order=tuple(str(n) for n in manifest["trainer_order"]),
                          _parameters=parameters, _trainer_states=trainer_states)
    except (KeyError, TypeError, ValueError) as err:
        raise damaged(f"its {_MANIFEST} lacks or garbles {err}") from None


class EpochCheckpointer(Callback):
    """A :func:`save_checkpoint` at the end of every epoch (devices as :func:`device_spec` names
    them); in a resumed run it first restores the trainer's state from ``resume_from``. Each
    caller says what its run is by :meth:`contents`.

    Args:
        path: the checkpoint file.
        resume_from: the checkpoint a resumed run continues; None: a new run.
    """

    def __init__(self, path: PathLike, *, resume_from: Optional[Checkpoint] = None):
        self.path = Path(path)
        self.resume_from = resume_from

    def contents(self, state) -> Tuple[str, Mapping[str, Any], Mapping[str, Any]]:
        """``(model name, settings, extra)`` of the checkpoint written at this epoch's end."""
        raise NotImplementedError

    def on_train_begin(self, state):
        remove_stale_temporaries(self.path)  # left by a process killed while writing
        if self.resume_from is not None:
            self.resume_from.load_trainer_states(state.trainer, net=state.net)

    def on_epoch_end(self, state):
        model, settings, extra = self.contents(state)
        save_checkpoint(self.path, net=state.net, trainer=state.trainer, model=model,
                        epoch=state.epoch + 1, settings=settings, history=state.history,
                        devices=[device_spec(d) for d in state.devices], extra=extra)
