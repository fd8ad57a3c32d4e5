"""Multi-machine training on MXNet's own parameter server (the ``dist_sync`` kvstore over ps-lite).

A ps-lite cluster is one scheduler, S servers and W workers that all run the *same* command; the
``DMLC_*`` environment variables tell each process its role. Servers and the scheduler never get
past ``import mxnet`` (MXNet serves inside the import and exits when the workers finish); workers
create a ``dist_*`` kvstore and train, and ``gluon.Trainer(..., kvstore=kv)`` does the rest.

Worker side (:mod:`.worker`): :func:`create_kvstore`, :func:`worker_info`, :func:`is_chief`,
:func:`shard_options` and :func:`trainer_batch_size`.

Launcher side (replaces MXNet's ``tools/launch.py``, which crashes on Python 3.9+):
:func:`plan_cluster` (:mod:`.layout`) lays the processes out on this machine (127.0.0.1) or over
ssh on the hosts of a hosts file, ``ClusterPlan.format()`` prints the exact commands (a dry run),
and :func:`launch` (:mod:`.running`) runs the plan and watches every process. ps-lite itself
notices no failure: when a worker dies the others block forever, so the launcher stops the whole
cluster as soon as any process fails.
``gluon-modern-cnn launch -n 2 -- gluon-modern-cnn train lenet_bn --kvstore dist_sync`` runs the
package's own training as a cluster (:func:`run_cluster` under the CLI's ``launch``);
``python -m gluon_modern_cnn.distributed -n 2 -- COMMAND`` is the same command
(``gluon_modern_cnn.cli.launch_main``).
"""
from .layout import (DEFAULT_PORT, ClusterPlan, ClusterProcess, Host, plan_cluster,
                     read_hosts_file)
from .running import (DEFAULT_STALL_TIMEOUT, ClusterError, ClusterTimeout, LaunchResult, launch,
                      run_cluster)
from .worker import (INDEPENDENT_ENV_VAR, KVSTORE_TYPES, LAUNCHER_ENV_VAR, WorkerInfo,
                     create_kvstore, is_chief, shard_options, trainer_batch_size, worker_info)

__all__ = [
    "KVSTORE_TYPES", "LAUNCHER_ENV_VAR", "INDEPENDENT_ENV_VAR", "DEFAULT_PORT",
    "DEFAULT_STALL_TIMEOUT",
    "create_kvstore", "WorkerInfo", "worker_info", "is_chief", "shard_options",
    "trainer_batch_size",
    "Host", "read_hosts_file", "ClusterProcess", "ClusterPlan", "plan_cluster",
    "LaunchResult", "ClusterError", "ClusterTimeout", "launch", "run_cluster",
]
