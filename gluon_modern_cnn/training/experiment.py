"""A registered model end to end: a planned run's data, network and loop, with checkpoints and
resumption.

:func:`run_training` runs a :class:`RunPlan` (:func:`plan_run`: ``gluon-modern-cnn train``, the
reproduction runner and :func:`resume_training` build theirs with it): it trains with
:func:`training.fit` and writes the training curve, the history and the final parameters to the
plan's output folder, with a checkpoint after every epoch that :func:`resume_training` continues
from. :func:`train_model` is both steps for Python callers.

Resuming is exact on the CPU: ``fit(seed=...)`` reseeds MXNet's and NumPy's generators and the
loader's shuffling from ``(seed, epoch)`` at every epoch, so a resumed run draws the same batches
and dropout masks as an uninterrupted one, and the checkpoint holds everything else (parameters,
batch-norm statistics, optimizer state, history): with the same seed, settings, devices, MXNet
build and thread count (parallel reductions may depend on it), the resumed run ends with
bit-identical parameters. On a GPU the batches are the same and ``mx.random.seed`` reseeds the GPU
generators too (not verified here: no GPU), but cuDNN may pick nondeterministic algorithms
(atomic additions in convolution backward passes, autotuned per process), so the parameters agree
only to floating-point noise unless ``MXNET_CUDNN_AUTOTUNE_DEFAULT=0`` and
``MXNET_ENFORCE_DETERMINISM=1`` are set; even uninterrupted GPU runs differ that much.

On a parameter-server cluster (a ``dist_*`` kvstore, see :mod:`gluon_modern_cnn.runtime.distributed`)
every worker runs its plan on its shard of the training images and only rank 0 writes;
MXNet cannot save the optimizer state the servers hold, so rank 0 writes its weights and history
after every epoch instead of a checkpoint, and such a run cannot be resumed.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Union

import mxnet as mx

from ..data import IMAGE_SIZE, FastImageLoader, load_data_fashion_mnist
from ..data import fashion_mnist_loader as data_loader
from ..models import get_model, model_info
from ..runtime.devices import device_spec, parse_devices, resolve_devices
from ..runtime.files import claim_run_folder
from .checkpoint import (Checkpoint, CheckpointError, EpochCheckpointer, atomic_write,
                         load_checkpoint, save_parameters)
from .loop import (AnimatorCallback, Callback, History, book_animator, fit, model_title,
                   print_result)
from .run_plan import (DEFAULT_SEED, RunPlan, RunSettings, check_input_size, check_kvstore,
                       default_resize, plan_run, resolve_settings)

# RunSettings, resolve_settings and the rest of run_plan are importable from here as before.
__all__ = ["DEFAULT_SEED", "RunSettings", "RunPlan", "TrainOutcome", "resolve_settings",
           "default_resize", "plan_run", "train_model", "run_training", "resume_training",
           "prepare_output", "fashion_mnist_loader", "Checkpointer", "OUTPUT_FILES",
           "check_input_size"]

#: What an output folder holds after a run (the checkpoint after its first epoch).
OUTPUT_FILES = {"settings": "settings.json", "history": "history.json", "curve": "curve.png",
                "parameters": "model.params", "checkpoint": "checkpoint.zip",
                # What model.params is for (model, input size): read by evaluate/predict/export.
                "about": "model.params.json"}

@dataclass
class TrainOutcome:
    """The trained network, its history, and the plan it was trained by.

    Args:
        net: the trained network.
        history: every finished epoch's loss, accuracies and speed (:class:`History`).
        plan: the run's plan (:func:`plan_run`): its settings, devices and output folder.
        files: the paths written, by :data:`OUTPUT_FILES` key.
    """

    net: object
    history: History
    plan: RunPlan
    files: dict = field(default_factory=dict)

    @property
    def settings(self) -> RunSettings:
        return self.plan.settings

    @property
    def devices(self) -> List[mx.Context]:
        return list(self.plan.devices)

    @property
    def out(self) -> Optional[Path]:
        """The output folder; None when nothing was written."""
        return self.plan.out


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

def fashion_mnist_loader(train: bool, *, batch_size: int, resize: Optional[int] = None,
                         subset: Optional[int] = None, seed: Optional[int] = None,
                         data_root=None, num_shards: int = 1,
                         shard_index: int = 0) -> FastImageLoader:
    """The fast Fashion-MNIST loader of one split (the training split shuffled), optionally on
    its first ``subset`` images only, and on a cluster worker's shard of them
    (:func:`distributed.shard_options`): :func:`data.fashion_mnist_loader` with ``fast=True``.

    Args:
        train: the training split (shuffled) or the test split.
        batch_size: images per batch.
        resize: the images' side; None keeps 28x28.
        subset: only the first ``subset`` images of the split.
        seed: the shuffling's seed; None: unseeded.
        data_root: the Fashion-MNIST folder (:func:`data.resolve_data_root`).
        num_shards, shard_index: this worker's shard of the split.
    """
    return data_loader(train, batch_size, resize, fast=True, root=data_root, subset=subset,
                       seed=seed, num_shards=num_shards, shard_index=shard_index)


def _fashion_mnist(settings: RunSettings, data_root, shards: Mapping[str, int]):
    """``(train_iter, test_iter)``; on a cluster the training images are sharded and every worker
    tests on the whole test split, so that rank 0 reports the test accuracy of all of it."""
    if not settings.fast_data:
        if shards["num_shards"] > 1:
            raise ValueError("training on a cluster needs the fast data pipeline, which shards "
                             "the data (fast_data=True)")
        return load_data_fashion_mnist(settings.batch_size, settings.resize, root=data_root)
    train_iter = fashion_mnist_loader(True, batch_size=settings.batch_size,
                                      resize=settings.resize, subset=settings.subset,
                                      seed=settings.seed, data_root=data_root, **shards)
    test_iter = fashion_mnist_loader(False, batch_size=settings.batch_size,
                                     resize=settings.resize, subset=settings.subset,
                                     data_root=data_root)
    return train_iter, test_iter


# ---------------------------------------------------------------------------------------------
# Callbacks: progress and checkpoints
# ---------------------------------------------------------------------------------------------

class Checkpointer(EpochCheckpointer):
    """Writes a checkpoint (:func:`checkpoint.save_checkpoint`) at the end of every epoch; in a
    resumed run it first restores the trainer's state from ``resume_from``. ``animator``'s points
    are saved with it so that a resumed run draws the whole curve, and ``data_root`` (the run's
    data folder, resolved by :func:`plan_run`) so that it finds the data.

    Args:
        path: the checkpoint file.
        settings: the run's settings, stored with every checkpoint.
        data_root: the run's data folder, stored for ``--resume``.
        resume_from: the checkpoint a resumed run restores its trainer from.
        animator: the run's curve, whose points every checkpoint keeps.
    """

    def __init__(self, path, settings: RunSettings, *, data_root: Path,
                 resume_from: Optional[Checkpoint] = None, animator=None):
        super().__init__(path, resume_from=resume_from)
        self.settings = settings
        self.animator = animator
        self.data_root = str(data_root)

    def contents(self, state):
        extra = {"data_root": self.data_root}
        if self.animator is not None and self.animator.X is not None:
            extra["curve"] = {"X": self.animator.X, "Y": self.animator.Y}
        return self.settings.model, self.settings.to_dict(), extra


class _ClusterCheckpointer(Callback):
    """Rank 0's outputs after every epoch of a cluster run: its weights and batch-norm statistics
    (``model.params``) and the history. ``trainer.save_states`` refuses a distributed kvstore (the
    servers hold the optimizer state), so there is no resumable checkpoint."""

    def __init__(self, files: Mapping[str, Path], about: Mapping[str, Any]):
        self.files = files
        self.about = about

    def on_epoch_end(self, state):
        save_parameters(state.net, self.files["parameters"], about=self.about)
        atomic_write(self.files["history"],
                     lambda tmp: Path(tmp).write_text(state.history.to_json()))


def _replay_curve(animator, curve: Mapping[str, Any]) -> None:
    """Draw a checkpoint's saved curve points again, line by line."""
    lines = list(zip(curve.get("X") or [], curve.get("Y") or []))
    for index, (xs, ys) in enumerate(lines):
        for x, y in zip(xs, ys):
            animator.add([x] * len(lines), [y if i == index else None for i in range(len(lines))])


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------

def prepare_output(out: Union[str, Path], *, overwrite: bool = False) -> Path:
    """Check that ``out`` holds no earlier run before a new one writes there.

    A folder with a run that has trained weights (its checkpoint or parameters) is refused
    (continue that run with :func:`resume_training`) unless ``overwrite``, which deletes that
    run's files first; the leftovers of a run that stopped before its first checkpoint are removed
    with a note, since they hold nothing trained. Other files in the folder are left alone. A
    folder another live run writes to is refused (:func:`files.claim_run_folder`).

    Args:
        out: the run's output folder (created later, by the run).
        overwrite: delete an earlier run's files instead of refusing.

    Returns:
        ``out`` as a Path.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file, not a folder for a run's outputs")
    with claim_run_folder(out):
        existing = [out / name for name in OUTPUT_FILES.values() if (out / name).exists()]
        trained = [p for p in existing if p.name in (OUTPUT_FILES["checkpoint"],
                                                     OUTPUT_FILES["parameters"])]
        if trained and not overwrite:
            raise FileExistsError(
                f"{out} already holds a training run ({', '.join(p.name for p in existing)}); "
                f"continue it with --resume {out}, replace it with --overwrite, or choose "
                f"another --out folder")
        if existing and not trained:
            print(f"note: removing {', '.join(p.name for p in existing)} from {out}, left by a "
                  f"run that stopped before its first checkpoint", file=sys.stderr)
        for path in existing:
            if path.is_dir():
                raise FileExistsError(f"{path} is a folder where a run writes a file; move it "
                                      f"away or choose another --out folder")
            path.unlink()
    return out


def train_model(settings: RunSettings, *,
                device: Union[str, mx.Context, Sequence[mx.Context], None] = None,
                data_root=None, out: Union[str, Path, None] = None,
                callbacks: Iterable[Callback] = (), data=None, kvstore="device",
                quiet: bool = False, progress: bool = True,
                resume_from: Optional[Checkpoint] = None) -> TrainOutcome:
    """Train ``settings.model`` and, with ``out``, write its settings, history, curve and final
    parameters there, and a checkpoint after every epoch: :func:`run_training` of
    :func:`plan_run` (which resolves ``device``, ``data_root``, ``kvstore``, ``out`` and
    ``resume_from``; see there).

    Args:
        settings: the run's hyperparameters and seed (:func:`resolve_settings`).
        device, data_root, kvstore, out, resume_from: where the run trains (:func:`plan_run`).
        callbacks, data, quiet, progress: as :func:`run_training` takes them.
    """
    return run_training(plan_run(settings, device=device, data_root=data_root, kvstore=kvstore,
                                 out=out, resume_from=resume_from),
                        callbacks=callbacks, data=data, quiet=quiet, progress=progress)


def run_training(plan: RunPlan, *, callbacks: Iterable[Callback] = (), data=None,
                 quiet: bool = False, progress: bool = True) -> TrainOutcome:
    """Run a planned training run (:func:`plan_run`): the network, the data, the loop, and with
    ``plan.out`` the run's files.

    Args:
        plan: what trains, on which devices and data, where it writes and what it continues.
        callbacks: more :class:`Callback` objects for :func:`training.fit`.
        data: ``(train_iter, test_iter)``; None: Fashion-MNIST from ``plan.data_root`` with the
            run's batch size and resize (on a cluster, this worker's shard of the training images).
        quiet: leave out the book's two result lines (a worker other than rank 0 always does).
        progress: describe the run and show a bar per epoch on stderr (a line per epoch outside
            a terminal).

    ``plan.out`` is held for the run (:func:`files.claim_run_folder`): another run into it
    meanwhile is refused, naming this one. ``model.params`` gets ``model.params.json`` beside it:
    the model and the input size. On a cluster, ``settings.batch_size`` is per worker and
    ``trainer.step`` gets the plan's ``step_batch_size`` (the global batch under ``dist_sync``);
    rank 0 writes settings, curve, and its weights and history after every epoch (no checkpoint,
    no resume; see the module's docstring).
    """
    settings, devices, out, resume_from = plan.settings, list(plan.devices), plan.out, plan.resume_from
    quiet = quiet or not plan.is_chief
    initialize, start_epoch, history = True, 0, None
    # One live run per folder: a second run into it is refused while this one lives.
    with (claim_run_folder(out) if out is not None else contextlib.nullcontext()):
        if data is None:
            data = _fashion_mnist(settings, plan.data_root, plan.shards)
        train_iter, test_iter = data
        # Fresh names (conv0, ...) in every process: Gluon's Trainer orders the parameters, and
        # with them the optimizer state a checkpoint holds, by name.
        with mx.name.NameManager():
            net = get_model(settings.model)
        if resume_from is not None:
            resume_from.load_parameters(net, ctx=devices)
            initialize, start_epoch, history = False, resume_from.epoch, resume_from.history
        elif model_info(settings.model).initializes_itself:
            # The 1.0 networks start as the book's cells start them (their constructors'
            # initializers), not from train_ch6's Xavier.
            net.collect_params().reset_ctx(devices)
            initialize = False
        if settings.hybridize:
            net.hybridize(static_alloc=True, static_shape=True)
        if settings.dtype == "bfloat16":
            from .precision import use_bfloat16
            use_bfloat16(net, devices)
        files = {}
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            files = {key: out / name for key, name in OUTPUT_FILES.items()}
            run = {"settings": settings.to_dict(), "devices": [str(d) for d in devices],
                   "images": _image_counts(train_iter, test_iter)}
            if plan.cluster is not None:
                # What trainer.step divides by: the global batch under dist_sync (see distributed).
                run["cluster"] = {"kvstore": plan.cluster.kvstore_type,
                                  "num_workers": plan.cluster.worker.num_workers,
                                  "step_batch_size": plan.step_batch_size}
            atomic_write(files["settings"], lambda tmp: Path(tmp).write_text(
                json.dumps(run, indent=2)))
        animator = book_animator(settings.num_epochs, path=files.get("curve"),
                                 title=model_title(settings.model))
        if resume_from is not None and resume_from.extra.get("curve"):
            _replay_curve(animator, resume_from.extra["curve"])
        extra_callbacks = []
        if progress:
            print(_describe_run(plan), file=sys.stderr, flush=True)
        if out is not None:
            extra_callbacks.append(
                Checkpointer(files["checkpoint"], settings, data_root=plan.data_root,
                             resume_from=resume_from, animator=animator)
                if plan.cluster is None else _ClusterCheckpointer(files, _about(settings)))
        history = fit(net, train_iter, test_iter, settings.num_epochs, lr=settings.lr,
                      device=devices, initialize=initialize,
                      start_epoch=start_epoch, history=history, seed=settings.seed,
                      callbacks=[AnimatorCallback(animator), *extra_callbacks, *callbacks],
                      kvstore=plan.kvstore, step_batch_size=plan.step_batch_size,
                      progress=progress and plan.is_chief)
        if out is not None:
            atomic_write(files["history"], lambda tmp: Path(tmp).write_text(history.to_json()))
            if history.epochs:
                save_parameters(net, files["parameters"], about=_about(settings))
        if not quiet:
            print_result(history, devices)
        return TrainOutcome(net, history, plan, files)


def _about(settings: RunSettings) -> dict:
    """What a parameter file of this run is for, written beside it (``model.params.json``)."""
    info = model_info(settings.model)
    return {"model": settings.model, "resize": settings.resize,
            "input_shape": [info.in_channels, settings.resize or IMAGE_SIZE,
                            settings.resize or IMAGE_SIZE]}


def _image_counts(train_iter, test_iter) -> dict:
    """How many images each split of the run has (``--subset`` cuts both, to what they hold)."""
    return {split: len(loader.indices()) if hasattr(loader, "indices") else None
            for split, loader in (("train", train_iter), ("test", test_iter))}


def _describe_run(plan: RunPlan) -> str:
    """The line a run starts with on stderr: what trains, how, where, and where it writes."""
    settings, resume_from, cluster = plan.settings, plan.resume_from, plan.cluster
    what = (f"resuming {settings.model} after epoch {resume_from.epoch} of "
            f"{settings.num_epochs}" if resume_from is not None else
            f"training {settings.model}: {settings.num_epochs} "
            f"epoch{'s' if settings.num_epochs != 1 else ''}")
    subset = f", first {settings.subset} images" if settings.subset else ""
    batch = f"batch {settings.batch_size}"
    where = f"; outputs in {plan.out}" if plan.out else ""
    if cluster is not None:
        what = (f"worker rank {cluster.worker.rank} of {cluster.worker.num_workers} "
                f"({cluster.kvstore_type}): {what}")
        batch += (" per worker (each worker's updates applied on their own)"
                  if cluster.kvstore_type == "dist_async"
                  else f" per worker (global {cluster.step_batch_size})")
        where = where if cluster.is_chief else "; rank 0 writes the results"
    return (f"{what}, lr {settings.lr}, {batch}, resize "
            f"{settings.resize or '-'}, seed {settings.seed}{subset}, on "
            f"{', '.join(map(str, plan.devices))}{where}")


def resume_training(out: Union[str, Path], *, model: Optional[str] = None,
                    settings: Optional[Mapping[str, Any]] = None,
                    device: Union[str, mx.Context, Sequence[mx.Context], None] = None,
                    data_root=None, kvstore: str = "device", callbacks: Iterable[Callback] = (),
                    quiet: bool = False, progress: bool = True) -> TrainOutcome:
    """Continue the run in ``out`` from its checkpoint, to the end it would have reached
    uninterrupted (``gluon-modern-cnn train MODEL --resume OUT``).

    ``settings`` may repeat settings of the run (``{"lr": 0.05}``); one that differs is refused, as
    the resumed run would no longer end where the uninterrupted one does, except ``num_epochs``,
    which may grow to train further. The devices default to the run's (other ones must be as
    many), the data folder to the one the run used; ``model``, if given, must be the run's.

    Args:
        out: the output folder of the run to continue.
        model: the run's model, if the caller names it (checked).
        settings: settings the caller repeats (checked); ``num_epochs`` may grow.
        device: None: the run's own devices; otherwise as many (:func:`plan_run`).
        data_root: None: the folder the run used.
        kvstore: a single machine's (``device``, ``local``): a cluster run keeps no checkpoint.
        callbacks, quiet, progress: as :func:`run_training` takes them.
    """
    out = Path(out)
    check_kvstore(kvstore, resume_out=out)  # before the folder is claimed or the checkpoint read
    if not out.is_dir():
        raise FileNotFoundError(f"{out} does not exist; resume takes the output folder of an "
                                f"earlier run")
    # Held from the checkpoint's reading to the run's end: a second resume is refused, naming this.
    with claim_run_folder(out):
        return _resume(out, model=model, settings=settings, device=device, data_root=data_root,
                       kvstore=kvstore, callbacks=callbacks, quiet=quiet, progress=progress)


def _resume(out: Path, *, model, settings, device, data_root, kvstore, callbacks, quiet,
            progress) -> TrainOutcome:
    path = out / OUTPUT_FILES["checkpoint"]
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file; move it away")
    if not path.exists() and _cluster_run(out) is not None:
        raise ValueError(f"the run in {out} trained on a cluster ({_cluster_run(out)}), which "
                         f"keeps no checkpoint: MXNet cannot save the optimizer state its servers "
                         f"hold. Rank 0's weights after its last finished epoch are in "
                         f"{out / OUTPUT_FILES['parameters']}; start a new run to train again")
    if not path.exists():
        raise FileNotFoundError(f"{out} holds no checkpoint ({path.name}); a run writes one at the "
                                f"end of every epoch, so this one stopped during its first epoch. "
                                f"Start it again: the same command without --resume")
    checkpoint = load_checkpoint(path)
    if model is not None and checkpoint.model != model:
        raise CheckpointError(f"checkpoint in {out} is for {checkpoint.model}, not {model}")
    run = _settings_of(checkpoint)
    given = dict(settings or {})
    unknown = sorted(set(given) - {f.name for f in dataclasses.fields(RunSettings)})
    if unknown:
        raise ValueError(f"unknown settings {', '.join(unknown)}; settings are the fields of "
                         f"RunSettings")
    differ = [f"{name}={value!r} (the run has {getattr(run, name)!r})"
              for name, value in given.items()
              if name != "num_epochs" and value != getattr(run, name)]
    if differ:
        raise ValueError(f"cannot resume the run in {out} with other settings: "
                         f"{', '.join(differ)}. A resumed run repeats its run's settings, so that "
                         f"it ends where the uninterrupted run would; leave them out, or start a "
                         f"new run in another folder")
    num_epochs = given.get("num_epochs", run.num_epochs)
    if not isinstance(num_epochs, int) or num_epochs <= checkpoint.epoch:
        raise ValueError(f"the run in {out} has finished {checkpoint.epoch} of its {run.num_epochs}"
                         f" epochs; to train it further, ask for more than {checkpoint.epoch} "
                         f"epochs (--epochs)")
    run = dataclasses.replace(run, num_epochs=num_epochs)
    plan = plan_run(run, device=_resume_devices(checkpoint, device),
                    data_root=data_root or checkpoint.extra.get("data_root"), kvstore=kvstore,
                    out=out, resume_from=checkpoint)
    return run_training(plan, callbacks=callbacks, quiet=quiet, progress=progress)


def _cluster_run(out: Path) -> Optional[str]:
    """``dist_sync, 2 workers`` when ``out`` holds a run trained on a cluster, else None."""
    try:
        cluster = json.loads((out / OUTPUT_FILES["settings"]).read_text())["cluster"]
        return f"{cluster['kvstore']}, {cluster['num_workers']} workers"
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _settings_of(checkpoint: Checkpoint) -> RunSettings:
    try:
        run = RunSettings(**checkpoint.settings)
    except TypeError as err:
        raise CheckpointError(f"the settings in {checkpoint.path} do not fit this version of "
                              f"gluon-modern-cnn ({err})") from None
    # Checks them as a new run would be checked (the model exists, sizes fit, ...).
    return resolve_settings(run.model, lr=run.lr, num_epochs=run.num_epochs,
                            batch_size=run.batch_size, resize=run.resize,
                            hybridize=run.hybridize, fast_data=run.fast_data, seed=run.seed,
                            subset=run.subset, dtype=run.dtype)


def _resume_devices(checkpoint: Checkpoint, device) -> List[mx.Context]:
    saved = list(checkpoint.devices)
    if device is None:
        try:
            return parse_devices(",".join(saved))
        except ValueError as err:
            raise ValueError(f"the run in {checkpoint.path.parent} trained on {','.join(saved)}: "
                             f"{err}. Pass --device to continue it on other devices") from None
    devices = list(resolve_devices(device))
    if len(devices) != len(saved):
        raise ValueError(f"the run in {checkpoint.path.parent} trained on {len(saved)} device(s) "
                         f"({','.join(saved)}); continue it on as many, since every device "
                         f"computes its share of each batch (with its own batch statistics)")
    if [device_spec(d) for d in devices] != saved:
        print(f"note: the run trained on {','.join(saved)} and continues on "
              f"{','.join(map(device_spec, devices))}: same batches and random draws, but the "
              f"floating-point results of other hardware differ slightly", file=sys.stderr)
    return devices
