"""The worker side of a parameter-server cluster: the kvstore, this worker's rank and shard, and
the batch size ``trainer.step`` needs under ``dist_sync``."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, Optional

from ...checks import check_positive_int

if TYPE_CHECKING:
    from mxnet.kvstore import KVStore

__all__ = ["KVSTORE_TYPES", "LAUNCHER_ENV_VAR", "INDEPENDENT_ENV_VAR", "create_kvstore",
           "WorkerInfo", "worker_info", "is_chief", "shard_options", "trainer_batch_size"]

#: The kvstore names :func:`create_kvstore` accepts: single machine (``local``, ``device``) and
#: parameter-server cluster (``dist_*``).
KVSTORE_TYPES = ("local", "device", "dist_sync", "dist_async", "dist_sync_device")
# Synchronous types sum every worker's gradient into one update per step.
_SYNC_TYPES = ("dist_sync", "dist_sync_device")

#: Set by the launcher in every process it starts; workers then report their kvstore rank on stdout.
LAUNCHER_ENV_VAR = "GLUON_MODERN_CNN_LAUNCHER"
#: Set by ``launch --independent``: every process may train on its own (no cluster kvstore).
INDEPENDENT_ENV_VAR = "GLUON_MODERN_CNN_INDEPENDENT"

# Set by the launcher only: a user value would contradict the cluster layout.
_CLUSTER_VARS = ("DMLC_ROLE", "DMLC_PS_ROOT_URI", "DMLC_PS_ROOT_PORT", "DMLC_NUM_SERVER",
                 "DMLC_NUM_WORKER")
# What a worker prints under the launcher once ps-lite gave it its rank.
_RANK_LINE = "gluon-modern-cnn-launch: worker rank {rank} of {num_workers}"
_RANK_PATTERN = re.compile(r"gluon-modern-cnn-launch: worker rank (\d+) of (\d+)")


def create_kvstore(name: str = "dist_sync") -> "KVStore":
    """Create kvstore ``name`` for ``gluon.Trainer(kvstore=...)``.

    Under the launcher the worker prints its kvstore rank, which ps-lite assigns, so that the
    launcher can name it in failure reports.

    Args:
        name: one of :data:`KVSTORE_TYPES` (default ``"dist_sync"``); a ``dist_*`` kvstore needs
            the ``DMLC_*`` variables the launcher sets.

    Raises:
        ValueError: for an unknown name, or for a ``dist_*`` kvstore started without the launcher
            (saying how to launch; MXNet's own error is a bare ``Check notnull``).
    """
    if name not in KVSTORE_TYPES:
        raise ValueError(f"unknown kvstore {name!r}; choose one of {', '.join(KVSTORE_TYPES)}")
    is_dist = name.startswith("dist")
    if is_dist:
        missing = [var for var in _CLUSTER_VARS if not os.environ.get(var)]
        if missing:
            raise ValueError(
                f"kvstore {name!r} needs a parameter-server cluster, but {', '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} not set: start the program with "
                f"`gluon-modern-cnn launch -n NUM_WORKERS -- COMMAND` (see docs/distributed.md), "
                f"or use kvstore 'local' or 'device' on one machine")
    from ..compat import import_mxnet
    kv = import_mxnet().kv.create(name)
    if is_dist and os.environ.get(LAUNCHER_ENV_VAR):
        print(_RANK_LINE.format(rank=kv.rank, num_workers=kv.num_workers), flush=True)
    return kv


@dataclass(frozen=True)
class WorkerInfo:
    """Where this process stands in the cluster.

    Args:
        rank: this worker's rank, in ``[0, num_workers)``.
        num_workers: the number of workers in the cluster (1 without one).
    """
    rank: int
    num_workers: int

    @property
    def is_chief(self) -> bool:
        """Rank 0 alone writes checkpoints and results (every worker holds the same weights)."""
        return self.rank == 0


def worker_info(kv: Optional["KVStore"] = None) -> WorkerInfo:
    """``kv.rank`` and ``kv.num_workers`` as a :class:`WorkerInfo`.

    Args:
        kv: the kvstore; ``None`` (no kvstore, the default) means rank 0 of 1.
    """
    return WorkerInfo(0, 1) if kv is None else WorkerInfo(int(kv.rank), int(kv.num_workers))


def is_chief(kv: Optional["KVStore"] = None) -> bool:
    """Whether this process writes checkpoints and results: rank 0, or the only process.

    Args:
        kv: the kvstore; ``None`` (the default) means a single process.
    """
    return worker_info(kv).is_chief


def shard_options(kv: Optional["KVStore"] = None) -> Dict[str, int]:
    """The data loader's shard of this worker: ``{"num_shards": W, "shard_index": rank}``.

    Pass them on: ``load_data_fashion_mnist(..., fast=True, seed=s, **shard_options(kv))``;
    every worker must use the same seed and read the same number of batches per epoch, or the
    workers that have a batch left block forever waiting for the others' gradients.

    Args:
        kv: the kvstore; ``None`` (the default) gives one shard, index 0.
    """
    info = worker_info(kv)
    return {"num_shards": info.num_workers, "shard_index": info.rank}


def trainer_batch_size(kv: Optional["KVStore"], batch_size: int) -> int:
    """The number to pass to ``trainer.step`` when each worker reads ``batch_size`` samples a step.

    Under ``dist_sync`` the servers *sum* the workers' gradients and ``trainer.step(n)`` divides
    that sum by ``n``, so ``n`` must be the global batch ``batch_size * num_workers`` for the
    learning rate to mean what it means on one machine with that global batch (measured, see
    docs/distributed.md). ``dist_async`` applies each worker's gradient on its own, and a single
    process already sums its devices' gradients over ``batch_size`` samples: both keep it as is.

    Args:
        kv: the kvstore, or ``None`` for a single process.
        batch_size: samples each worker reads per step (a positive integer).

    Raises:
        ValueError: when ``batch_size`` is not a positive integer.
    """
    check_positive_int(batch_size, "batch_size")
    if kv is not None and kv.type in _SYNC_TYPES:
        return batch_size * int(kv.num_workers)
    return batch_size
