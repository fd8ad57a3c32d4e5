"""Every decision of a training run, made once: what trains and how (:class:`RunSettings`, the
book's hyperparameters with the caller's overrides), and where (:class:`RunPlan`: the devices, the
data folder, the run's place in a cluster, its output folder and the checkpoint it continues).

``gluon-modern-cnn train``, ``train --resume``, ``reproduce`` and the Python functions under them
build their runs with :func:`resolve_settings` and :func:`plan_run`, and pass the plan down:
nothing below re-decides a device, a kvstore or a data folder. ``bench`` checks its
configurations with :func:`resolve_settings` too.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Optional, Sequence, Tuple, Union

import mxnet as mx

from ..checks import check_positive
from ..data import IMAGE_SIZE, resolve_data_root
from ..models import model_info
from ..runtime import distributed
from ..runtime.devices import resolve_devices

if TYPE_CHECKING:
    from mxnet.kvstore import KVStore

    from .checkpoint import Checkpoint

__all__ = ["DEFAULT_SEED", "RunSettings", "resolve_settings", "default_resize", "check_input_size",
           "ClusterRole", "RunPlan", "plan_run", "check_kvstore"]

_UNSET = object()

#: The seed of every run that names none (``train``, ``reproduce``, ``bench`` and the Python
#: functions under them): one default, so that two runs of the same command draw the same numbers.
DEFAULT_SEED = 0


@dataclass(frozen=True)
class RunSettings:
    """Everything that determines what a training run computes (checkpoints store it; a resumed
    run must repeat it). Build it with :func:`resolve_settings`, which fills in the book's values.

    Args:
        model: a registered model's name (``gluon-modern-cnn list``).
        lr: the SGD learning rate.
        num_epochs: passes over the training images.
        batch_size: images per step (per worker on a cluster).
        resize: the side the 28x28 images are resized to; None keeps them as they are.
        hybridize: hybridize the network (``static_alloc``/``static_shape``); twins only.
        fast_data: the package's batch-vectorised loader instead of the book's per-sample one.
        seed: seeds MXNet, NumPy and the shuffling at every epoch; None: unseeded.
        subset: train and test on the first ``subset`` images of each split only (quick checks).
        dtype: ``float32`` (the book's) or ``bfloat16`` (``precision.use_bfloat16``; twins only).
    """

    model: str
    lr: float
    num_epochs: int
    batch_size: int
    resize: Optional[int]
    hybridize: bool = False
    fast_data: bool = True
    seed: Optional[int] = DEFAULT_SEED
    subset: Optional[int] = None
    dtype: str = "float32"

    def to_dict(self) -> dict:
        return asdict(self)


def default_resize(model: str) -> Optional[int]:
    """The ``resize`` the book trains ``model`` with (None: the 28x28 images as they are); for a
    model without book settings, its own input size.

    Args:
        model: a registered model's name.
    """
    info = model_info(model)
    if info.hyperparameters is not None:
        return info.hyperparameters.resize
    return None if info.input_size == IMAGE_SIZE else info.input_size


def check_input_size(model: str, resize: Optional[int], batch_size: int = 1) -> None:
    """Refuse an input size the model cannot take, or whose batches cannot fit in memory (checked
    before anything is allocated: a huge resize would otherwise fail minutes later).

    Args:
        model: a registered model's name.
        resize: the images' side; None: 28.
        batch_size: images per batch.
    """
    info = model_info(model)
    size = resize or IMAGE_SIZE
    if size < info.min_input_size:
        raise ValueError(f"{model} needs input images of at least {info.min_input_size}x"
                         f"{info.min_input_size} pixels; resize={resize} gives {size}x{size}")
    needed = batch_size * info.in_channels * size * size * 4  # one float32 input batch
    memory = physical_memory()
    if memory and needed > memory // 4:  # activations and gradients take many times more
        raise ValueError(f"resize={resize} with batch_size={batch_size} needs "
                         f"{needed / 2 ** 30:.1f} GiB for one input batch alone, on a machine with "
                         f"{memory / 2 ** 30:.1f} GiB of memory; choose a smaller resize or batch "
                         f"size")


def physical_memory() -> Optional[int]:
    """Bytes of memory of this machine, or None where the platform does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def resolve_settings(model: str, *, lr=None, num_epochs=None, batch_size=None, resize=_UNSET,
                     hybridize: bool = False, fast_data: bool = True,
                     seed: Optional[int] = DEFAULT_SEED, subset: Optional[int] = None,
                     dtype: str = "float32") -> RunSettings:
    """The book's hyperparameters for ``model`` (its section's ``lr``, ``num_epochs``,
    ``batch_size`` and ``resize``; :mod:`gluon_modern_cnn.book`) with the given ones overriding
    them, checked as a run needs them.

    Args:
        model: a registered model's name.
        lr, num_epochs, batch_size: None takes the book's; required for a model the book does
            not train.
        resize: None trains on the 28x28 images; left out, the book's resize for the model.
        hybridize, fast_data, seed, subset: as :class:`RunSettings` holds them.
        dtype: ``float32`` or ``bfloat16``, which trains a hybridized twin in bfloat16 (and
            implies ``hybridize``).

    Raises:
        ValueError: a setting the model cannot train with, named with the fix.
    """
    from .precision import PRECISIONS
    info = model_info(model)
    if dtype not in PRECISIONS:
        raise ValueError(f"dtype must be one of {', '.join(PRECISIONS)}; got {dtype!r}")
    if dtype == "bfloat16":
        if not info.hybrid:
            raise ValueError(f"bfloat16 rewrites the hybridized graph of a _hybrid twin; {model} is "
                             f"the book's nn.Block version" + (f": use {info.twin!r}"
                                                               if info.twin else ""))
        hybridize = True
    book_hp = info.hyperparameters
    missing = [name for name, value in (("lr", lr), ("num_epochs", num_epochs),
                                        ("batch_size", batch_size)) if value is None]
    if book_hp is None and missing:
        flags = {"lr": "--lr 0.05", "num_epochs": "--epochs 10", "batch_size": "--batch-size 128"}
        raise ValueError(f"{model} has no training settings in the book ({info.section}); give "
                         f"{' and '.join(missing)} (e.g. {' '.join(flags[m] for m in missing)})")
    if hybridize and not info.hybrid:
        raise ValueError(f"{model} is the book's nn.Block version and cannot be hybridized; use "
                         f"its twin {info.hybrid_model!r}" if info.hybrid_model else
                         f"{model} cannot be hybridized")
    settings = RunSettings(
        model=model,
        lr=book_hp.lr if lr is None else lr,
        num_epochs=book_hp.num_epochs if num_epochs is None else num_epochs,
        batch_size=book_hp.batch_size if batch_size is None else batch_size,
        resize=default_resize(model) if resize is _UNSET else resize,
        hybridize=hybridize, fast_data=fast_data, seed=seed, subset=subset, dtype=dtype)
    if subset is not None and not fast_data:
        raise ValueError("subset= works with the fast data pipeline only (fast_data=True)")
    for name in ("num_epochs", "batch_size") + (("subset",) if subset is not None else ()):
        check_positive(getattr(settings, name), name)
    check_positive(settings.lr, "lr", integer=False)
    check_input_size(model, settings.resize, settings.batch_size)
    return settings


# ---------------------------------------------------------------------------------------------
# Where a run trains: devices, data, cluster, output
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClusterRole:
    """This worker's place in a parameter-server run (see :mod:`..runtime.distributed`).

    Args:
        kvstore_type: the connected kvstore's type (``dist_sync``, ``dist_async``, ...).
        worker: this worker's rank and the number of workers.
        step_batch_size: what ``trainer.step`` divides by: the global batch under ``dist_sync``.
    """

    kvstore_type: str
    worker: distributed.WorkerInfo
    step_batch_size: int

    @property
    def is_chief(self) -> bool:
        return self.worker.is_chief


@dataclass(frozen=True)
class RunPlan:
    """One training run with every decision made: built by :func:`plan_run`, run by
    :func:`..experiment.run_training`.

    Args:
        settings: what trains and how.
        devices: the contexts every batch is split over.
        data_root: the Fashion-MNIST folder, absolute (checkpoints record it for ``--resume``).
        kvstore: what ``gluon.Trainer(kvstore=...)`` gets: a name (``device``, ``local``), None
            (no kvstore), or a kvstore object (on a cluster, the connected ``dist_*`` one).
        cluster: this worker's role on a cluster; None on one machine.
        out: the output folder; None: nothing is written (a Python caller's choice, or a worker
            other than rank 0).
        resume_from: the checkpoint the run continues; None: a new run.
    """

    settings: RunSettings
    devices: Tuple[mx.Context, ...]
    data_root: Path
    kvstore: Union[str, "KVStore", None] = "device"
    cluster: Optional[ClusterRole] = None
    out: Optional[Path] = None
    resume_from: Optional["Checkpoint"] = None

    @property
    def is_chief(self) -> bool:
        """Whether this process reports and writes: rank 0, or the only process."""
        return self.cluster is None or self.cluster.is_chief

    @property
    def shards(self) -> Dict[str, int]:
        """This worker's shard of the training images (:func:`distributed.shard_options`)."""
        return distributed.shard_options(self.kvstore if self.cluster else None)

    @property
    def step_batch_size(self) -> Optional[int]:
        """What ``trainer.step`` divides by on a cluster; None: the loop's own batch size."""
        return self.cluster.step_batch_size if self.cluster is not None else None


def plan_run(settings: RunSettings, *,
             device: Union[str, mx.Context, Sequence[mx.Context], None] = None,
             data_root=None, kvstore: Union[str, "KVStore", None] = "device",
             out: Union[str, Path, None] = None, resume_from: Optional["Checkpoint"] = None) -> RunPlan:
    """Decide where ``settings`` trains, once, for everything below to use.

    Args:
        settings: the run's hyperparameters and seed (:func:`resolve_settings`).
        device: a context, a list of them, or a ``--device`` spec; None: the book's ``try_gpu()``.
        data_root: the Fashion-MNIST folder; None: ``FASHION_MNIST_ROOT`` or ``$MXNET_HOME``
            (:func:`data.resolve_data_root`).
        kvstore: ``device`` or ``local`` on one machine; ``dist_sync`` (and the other ``dist_*``
            types) on a cluster started by ``gluon-modern-cnn launch``, connected here after every
            check (which tells the worker its rank); None (no kvstore); or a kvstore already
            created.
        out: the output folder; on a cluster only rank 0 keeps it.
        resume_from: the checkpoint the run continues (:func:`..experiment.resume_training`).

    Raises:
        ValueError: a combination that cannot run: the kvstore's rules (:func:`check_kvstore`),
            devices that do not exist, bfloat16 where the CPU lacks it.
    """
    kind = check_kvstore(kvstore, resume_out=resume_from.path.parent if resume_from else None)
    devices = tuple(resolve_devices(device))
    if settings.dtype == "bfloat16":  # refused before anything is written or connected
        from .precision import check_bfloat16_support
        check_bfloat16_support(devices)
    data_root = resolve_data_root(data_root).resolve()
    cluster = None
    if kind is not None and kind.startswith("dist"):
        # Every check is done: connecting blocks until all workers have connected, and tells
        # this worker its rank. The kvstore lives as long as the plan.
        if isinstance(kvstore, str):
            kvstore = distributed.create_kvstore(kvstore)
        cluster = ClusterRole(kind, distributed.worker_info(kvstore),
                              distributed.trainer_batch_size(kvstore, settings.batch_size))
        if not cluster.is_chief:
            out = None  # every worker has the same weights: rank 0 writes them
    return RunPlan(settings, devices, data_root, kvstore=kvstore, cluster=cluster,
                   out=Path(out) if out is not None else None, resume_from=resume_from)


def check_kvstore(kvstore: Union[str, "KVStore", None], *,
                  resume_out: Optional[Path] = None) -> Optional[str]:
    """The rules on a run's kvstore, checked before anything is claimed, loaded or connected;
    returns its type (None: no kvstore).

    Args:
        kvstore: a name of :data:`distributed.KVSTORE_TYPES`, None, or a kvstore object.
        resume_out: the folder of the run a resumed run continues; None: a new run.

    Raises:
        ValueError: an unknown kvstore; a cluster kvstore for a resumed run (a cluster run keeps
            no checkpoint); no cluster kvstore in a process ``launch`` started without
            ``--independent`` (every process would train on its own into the same folder).
    """
    kind = kvstore if kvstore is None or isinstance(kvstore, str) else getattr(kvstore, "type",
                                                                                   kvstore)
    if kind is not None and kind not in distributed.KVSTORE_TYPES:
        raise ValueError(f"kvstore must be one of {', '.join(distributed.KVSTORE_TYPES)}, None or "
                         f"a kvstore; got {kvstore!r}")
    on_cluster = kind is not None and kind.startswith("dist")
    if os.environ.get(distributed.LAUNCHER_ENV_VAR) and not on_cluster \
            and not os.environ.get(distributed.INDEPENDENT_ENV_VAR):
        raise ValueError(f"this process was started by `launch` but trains without a cluster "
                         f"kvstore ({kind}): every process would train on its own into the same "
                         f"folder. Train one model on the cluster with `train ... --kvstore "
                         f"dist_sync`, or pass --independent to `launch` to really run independent "
                         f"copies")
    if on_cluster and resume_out is not None:
        raise ValueError(f"--resume cannot be combined with --kvstore {kind}: a cluster run keeps "
                         f"no checkpoint (MXNet cannot save the optimizer state its servers hold). "
                         f"Start a new run; rank 0's weights of the last finished epoch are in "
                         f"{Path(resume_out) / 'model.params'}")
    return kind
