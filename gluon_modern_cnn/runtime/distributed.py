"""Multi-machine training on MXNet's own parameter server (the ``dist_sync`` kvstore over ps-lite).

A ps-lite cluster is one scheduler, S servers and W workers that all run the *same* command; the
``DMLC_*`` environment variables tell each process its role. Servers and the scheduler never get
past ``import mxnet`` (MXNet serves inside the import and exits when the workers finish); workers
create a ``dist_*`` kvstore and train, and ``gluon.Trainer(..., kvstore=kv)`` does the rest.

Worker side: :func:`create_kvstore`, :func:`worker_info`, :func:`is_chief`, :func:`shard_options`
and :func:`trainer_batch_size`.

Launcher side (replaces MXNet's ``tools/launch.py``, which crashes on Python 3.9+):
:func:`plan_cluster` lays the processes out on this machine (127.0.0.1) or over ssh on the hosts of
a hosts file, ``ClusterPlan.format()`` prints the exact commands (a dry run), and :func:`launch`
runs the plan and watches every process. ps-lite itself notices no failure: when a worker dies the
others block forever, so the launcher stops the whole cluster as soon as any process fails.
``gluon-modern-cnn launch -n 2 -- gluon-modern-cnn train lenet_bn --kvstore dist_sync`` runs the
package's own training as a cluster; ``python -m gluon_modern_cnn.distributed -n 2 -- COMMAND`` is
the same launcher without the CLI (:func:`launch_main`).
"""
from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import (IO, TYPE_CHECKING, Callable, Dict, Iterator, List, Mapping, Optional, Sequence,
                    Tuple, Union)

from ..checks import check_positive, check_positive_int

if TYPE_CHECKING:
    from mxnet.kvstore import KVStore

__all__ = [
    "KVSTORE_TYPES", "LAUNCHER_ENV_VAR", "INDEPENDENT_ENV_VAR", "DEFAULT_PORT",
    "DEFAULT_STALL_TIMEOUT",
    "create_kvstore", "WorkerInfo", "worker_info", "is_chief", "shard_options",
    "trainer_batch_size",
    "Host", "read_hosts_file", "ClusterProcess", "ClusterPlan", "plan_cluster",
    "LaunchResult", "ClusterError", "ClusterTimeout", "launch",
    "add_launch_arguments", "run_launch", "launch_main",
]

#: The kvstore names :func:`create_kvstore` accepts: single machine (``local``, ``device``) and
#: parameter-server cluster (``dist_*``).
KVSTORE_TYPES = ("local", "device", "dist_sync", "dist_async", "dist_sync_device")
# Synchronous types sum every worker's gradient into one update per step.
_SYNC_TYPES = ("dist_sync", "dist_sync_device")

#: Set by the launcher in every process it starts; workers then report their kvstore rank on stdout.
LAUNCHER_ENV_VAR = "GLUON_MODERN_CNN_LAUNCHER"
#: Set by ``launch --independent``: every process may train on its own (no cluster kvstore).
INDEPENDENT_ENV_VAR = "GLUON_MODERN_CNN_INDEPENDENT"
#: Seconds a local worker may be stopped (SIGSTOP, Ctrl-Z) or use no CPU before the launcher
#: declares it hung and stops the cluster (``--stall-timeout``).
DEFAULT_STALL_TIMEOUT = 120.0
#: The scheduler's port on multi-host runs unless ``port=`` is given (open it in the firewall).
DEFAULT_PORT = 9091

# Set by the launcher only: a user value would contradict the cluster layout.
_CLUSTER_VARS = ("DMLC_ROLE", "DMLC_PS_ROOT_URI", "DMLC_PS_ROOT_PORT", "DMLC_NUM_SERVER",
                 "DMLC_NUM_WORKER")
# Inherited values would break the new cluster (ps-lite keeps a preset DMLC_RANK, for instance).
_NOT_INHERITED = _CLUSTER_VARS + ("DMLC_RANK", "DMLC_NODE_HOST")
_RANK_LINE = "gluon-modern-cnn-launch: worker rank {rank} of {num_workers}"
_RANK_PATTERN = re.compile(r"gluon-modern-cnn-launch: worker rank (\d+) of (\d+)")
# Printed by the remote shell before it execs the command, so the launcher can kill it remotely.
_PID_LINE = "gluon-modern-cnn-launch: pid"
_PID_PATTERN = re.compile(r"gluon-modern-cnn-launch: pid (\d+)")
# Fail fast instead of prompting, and notice a dead host within about 30 s.
_SSH_DEFAULTS = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                 "-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=3")
_SSH_STOP_TIMEOUT = 20.0  # seconds a remote stop may take beyond the grace period
# A server or the scheduler may finish a moment before the last worker (ps-lite's final barrier);
# longer than this with workers still running means they lost it and would block forever.
_PS_EXIT_TOLERANCE = 30.0
_POLL_INTERVAL = 0.1


# ---------------------------------------------------------------------------------------------
# Worker side
# ---------------------------------------------------------------------------------------------

def create_kvstore(name: str = "dist_sync") -> "KVStore":
    """Create kvstore ``name`` (one of :data:`KVSTORE_TYPES`) for ``gluon.Trainer(kvstore=...)``.

    A ``dist_*`` kvstore needs the ``DMLC_*`` variables the launcher sets; without them this raises
    a ValueError saying how to launch (MXNet's own error is a bare ``Check notnull``). Under the
    launcher the worker prints its kvstore rank, which ps-lite assigns, so that the launcher can
    name it in failure reports.
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
    from .compat import import_mxnet
    kv = import_mxnet().kv.create(name)
    if is_dist and os.environ.get(LAUNCHER_ENV_VAR):
        print(_RANK_LINE.format(rank=kv.rank, num_workers=kv.num_workers), flush=True)
    return kv


@dataclass(frozen=True)
class WorkerInfo:
    """Where this process stands in the cluster: ``rank`` in ``[0, num_workers)``."""
    rank: int
    num_workers: int

    @property
    def is_chief(self) -> bool:
        """Rank 0 alone writes checkpoints and results (every worker holds the same weights)."""
        return self.rank == 0


def worker_info(kv: Optional["KVStore"] = None) -> WorkerInfo:
    """``kv.rank`` and ``kv.num_workers``; without a kvstore (``None``) rank 0 of 1."""
    return WorkerInfo(0, 1) if kv is None else WorkerInfo(int(kv.rank), int(kv.num_workers))


def is_chief(kv: Optional["KVStore"] = None) -> bool:
    """Whether this process writes checkpoints and results: rank 0, or the only process."""
    return worker_info(kv).is_chief


def shard_options(kv: Optional["KVStore"] = None) -> Dict[str, int]:
    """The data loader's shard of this worker: ``{"num_shards": W, "shard_index": rank}``.

    Pass them on: ``load_data_fashion_mnist(..., fast=True, seed=s, **shard_options(kv))``;
    every worker must use the same seed and read the same number of batches per epoch, or the
    workers that have a batch left block forever waiting for the others' gradients.
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
    """
    check_positive_int(batch_size, "batch_size")
    if kv is not None and kv.type in _SYNC_TYPES:
        return batch_size * int(kv.num_workers)
    return batch_size


# ---------------------------------------------------------------------------------------------
# Cluster layout
# ---------------------------------------------------------------------------------------------

_HOST_PATTERN = re.compile(r"(?:(?P<user>[A-Za-z0-9._][A-Za-z0-9._-]*)@)?"
                           r"(?P<host>[A-Za-z0-9_][A-Za-z0-9._:\[\]%-]*)")


@dataclass(frozen=True)
class Host:
    """A machine reached over ssh: ``hostname`` (name or address) and an optional ``user``."""
    hostname: str
    user: Optional[str] = None

    @classmethod
    def parse(cls, text: str) -> "Host":
        """``"node1"`` or ``"alice@10.0.0.2"``."""
        match = _HOST_PATTERN.fullmatch(text.strip())
        if not match:
            raise ValueError(f"{text.strip()!r} is not a host: write `hostname` or `user@hostname`")
        return cls(match["host"], match["user"])

    @property
    def target(self) -> str:
        """What ssh is given: ``user@hostname`` or ``hostname``."""
        return f"{self.user}@{self.hostname}" if self.user else self.hostname

    def __str__(self) -> str:
        return self.target


def read_hosts_file(path: Union[str, "os.PathLike[str]"]) -> List[Host]:
    """The hosts of a hosts file: one ``[user@]hostname`` per line; ``#`` starts a comment."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"hosts file {path} does not exist: write one `[user@]hostname` "
                                f"per line")
    hosts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            hosts.append(Host.parse(text))
        except ValueError as err:
            raise ValueError(f"{path}, line {number}: {err}") from None
    if not hosts:
        raise ValueError(f"hosts file {path} names no host: write one `[user@]hostname` per line")
    return hosts


@dataclass(frozen=True)
class ClusterProcess:
    """One process of a planned cluster and the exact command that starts it.

    ``host`` is None for a process on this machine, which runs ``argv`` in ``cwd`` (None: the
    current directory) with ``env`` added to the launcher's environment; a remote process runs
    ``argv`` = the ssh command, whose remote command changes directory and sets ``env`` itself.
    """
    role: str
    index: int
    host: Optional[Host]
    env: Mapping[str, str]
    argv: Tuple[str, ...]
    cwd: Optional[str] = None

    @property
    def name(self) -> str:
        return f"{self.role} {self.index}"

    @property
    def where(self) -> str:
        return "this machine" if self.host is None else self.host.target

    def shell_command(self) -> str:
        """The command as one shell line, as the dry run prints it."""
        if self.host is not None:
            return shlex.join(self.argv)
        line = shlex.join(["env", *(f"{k}={v}" for k, v in self.env.items()), *self.argv])
        return line if self.cwd is None else f"cd {shlex.quote(self.cwd)} && {line}"


@dataclass(frozen=True)
class ClusterPlan:
    """Every process of a cluster (scheduler, servers, workers) and its command; see :func:`launch`.
    """
    processes: Tuple[ClusterProcess, ...]
    scheduler_uri: str
    port: int
    ssh_options: Tuple[str, ...] = ()

    @property
    def workers(self) -> Tuple[ClusterProcess, ...]:
        return tuple(p for p in self.processes if p.role == "worker")

    def format(self) -> str:
        """The exact commands, one per process, each after a comment naming it (the dry run)."""
        lines = [f"# ps-lite scheduler at {self.scheduler_uri}:{self.port}"]
        for process in self.processes:
            lines += [f"# {process.name} on {process.where}", process.shell_command()]
        return "\n".join(lines) + "\n"


def plan_cluster(command: Sequence[str], *, num_workers: int, num_servers: int = 1,
                 hosts: Optional[Sequence[Union[Host, str]]] = None, scheduler: str = "local",
                 scheduler_host: Optional[str] = None, port: Optional[int] = None,
                 env: Optional[Mapping[str, str]] = None, workdir: Optional[str] = None,
                 ssh_options: Sequence[str] = ()) -> ClusterPlan:
    """Lay out a ps-lite cluster: 1 scheduler, ``num_servers`` servers, ``num_workers`` workers.

    Every process runs ``command`` in ``workdir`` (default: the current directory) with ``env``
    added. Without ``hosts`` all run here on 127.0.0.1 and the scheduler takes a free port. With
    ``hosts`` servers and workers go round-robin over them through ssh (worker i on host i mod N),
    so ``workdir`` must exist on every host; the scheduler runs on this machine
    (``scheduler="local"``, which then needs the code too) or on the first host (``"first-host"``)
    at ``port`` (default :data:`DEFAULT_PORT`). ps-lite binds the scheduler to the address it is
    given, so ``scheduler_host`` must be an IP address of the scheduler's machine that every host
    reaches; when omitted it is found from the hosts.
    """
    command = _check_command(command)
    num_workers = _check_count(num_workers, "num_workers")
    num_servers = _check_count(num_servers, "num_servers")
    if scheduler not in ("local", "first-host"):
        raise ValueError(f"scheduler must be 'local' (this machine) or 'first-host', "
                         f"got {scheduler!r}")
    extra_env = _check_env(env or {})
    options = tuple(ssh_options)
    host_list = [h if isinstance(h, Host) else Host.parse(h) for h in (hosts or ())]
    if hosts is not None and not host_list:
        raise ValueError("hosts is empty: give at least one host, or hosts=None for a cluster on "
                         "this machine")
    if host_list:
        first = host_list[0]
        if scheduler_host is not None:
            uri = _address_of(scheduler_host)
        elif scheduler == "local":
            uri = _outgoing_address(first.hostname)
        else:
            uri = _address_of(first.hostname)
        port = DEFAULT_PORT if port is None else _check_port(port)
        node_env = {}
    else:
        if scheduler != "local" or scheduler_host is not None:
            raise ValueError("scheduler= and scheduler_host= apply to multi-host runs (hosts=...); "
                             "a cluster on this machine uses 127.0.0.1")
        uri = "127.0.0.1"
        port = _free_port(uri) if port is None else _check_port(port)
        node_env = {"DMLC_NODE_HOST": uri}  # advertise and bind loopback only: nothing exposed
    base = {"DMLC_PS_ROOT_URI": uri, "DMLC_PS_ROOT_PORT": str(port),
            "DMLC_NUM_SERVER": str(num_servers), "DMLC_NUM_WORKER": str(num_workers), **node_env,
            LAUNCHER_ENV_VAR: "1", "PYTHONUNBUFFERED": "1", **extra_env}
    remote_dir = workdir if workdir is not None else os.getcwd()
    processes = []
    for role, index in _layout(num_servers, num_workers):
        process_env = {"DMLC_ROLE": role, **base}
        if not host_list or (role == "scheduler" and scheduler == "local"):
            processes.append(ClusterProcess(role, index, None, process_env, tuple(command),
                                            workdir))
        else:
            host = host_list[0 if role == "scheduler" else index % len(host_list)]
            argv = _ssh_argv(host, process_env, command, remote_dir, options)
            processes.append(ClusterProcess(role, index, host, process_env, argv))
    return ClusterPlan(tuple(processes), uri, port, options)


def _layout(num_servers: int, num_workers: int) -> List[Tuple[str, int]]:
    return ([("scheduler", 0)] + [("server", i) for i in range(num_servers)]
            + [("worker", i) for i in range(num_workers)])


def _ssh_argv(host: Host, env: Mapping[str, str], command: Sequence[str], workdir: str,
              options: Sequence[str]) -> Tuple[str, ...]:
    # sshd makes the remote shell a session and process-group leader and `exec` keeps its pid,
    # so the echoed $$ names the command's process group for a remote kill.
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    remote = (f"echo {_PID_LINE} $$; cd {shlex.quote(workdir)} && "
              f"exec env {assignments} {shlex.join(command)}")
    return ("ssh", *_SSH_DEFAULTS, *options, host.target, remote)


def _remote_stop_argv(host: Host, pid: int, grace: float,
                      options: Sequence[str]) -> Tuple[str, ...]:
    """ssh command that stops a remote process group: SIGTERM, then SIGKILL after ``grace`` s."""
    group = f"-- -{pid}"
    remote = (f"kill -s TERM {group} 2>/dev/null || kill -s TERM {pid} 2>/dev/null; i=0; "
              f"while kill -s 0 {group} 2>/dev/null && [ $i -lt {int(grace) + 1} ]; "
              f"do sleep 1; i=$((i+1)); done; "
              f"kill -s KILL {group} 2>/dev/null || kill -s KILL {pid} 2>/dev/null; true")
    return ("ssh", *_SSH_DEFAULTS, *options, host.target, remote)


def _check_command(command: Sequence[str]) -> List[str]:
    if isinstance(command, (str, bytes)):
        raise ValueError(f"command must be a list of arguments such as ['python', 'train.py'], "
                         f"got the string {command!r}")
    command = [str(arg) for arg in command]
    if not command:
        raise ValueError("no command to run: give the program every process runs, e.g. "
                         "`-- python train.py --kvstore dist_sync`")
    return command


def _check_count(value, what: str) -> int:
    return check_positive_int(value, what)


def _check_port(port) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"port must be an integer from 1 to 65535, got {port!r}")
    return port


def _check_env(env: Mapping[str, str]) -> Dict[str, str]:
    checked = {}
    for name, value in env.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"{name!r} is not an environment variable name")
        if name in _NOT_INHERITED:
            raise ValueError(f"{name} is set by the launcher for each process; leave it out of env")
        checked[name] = str(value)
    return checked


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def _address_of(host: str) -> str:
    """``host`` as an IP address: ps-lite's scheduler cannot bind to a host name."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return socket.gethostbyname(host)
    except OSError as err:
        raise ValueError(f"cannot resolve {host!r} to an IP address ({err}); pass "
                         f"scheduler_host= (--scheduler-host) with the scheduler's IP") from None


def _outgoing_address(host: str) -> str:
    """This machine's IP address on the route to ``host`` (connecting UDP sends nothing)."""
    target = _address_of(host)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((target, 9))
            address = sock.getsockname()[0]
    except OSError as err:
        raise ValueError(f"cannot find this machine's address towards {host} ({err}); pass "
                         f"scheduler_host= (--scheduler-host) with this machine's IP") from None
    if ipaddress.ip_address(address).is_loopback and not ipaddress.ip_address(target).is_loopback:
        raise ValueError(f"this machine reaches {host} through a loopback address; pass "
                         f"scheduler_host= (--scheduler-host) with an IP the hosts can reach")
    return address


# ---------------------------------------------------------------------------------------------
# Running a cluster
# ---------------------------------------------------------------------------------------------

class ClusterError(RuntimeError):
    """A process of the cluster failed; the launcher has stopped all the others.

    ``process`` is the failed process's launch name (``"worker 1"``), ``rank`` the kvstore rank of
    a failed worker (its launch index when it died before reporting it, ``rank_reported`` False).
    """

    def __init__(self, message: str, *, process: Optional[str] = None, rank: Optional[int] = None,
                 rank_reported: bool = False, returncode: Optional[int] = None):
        super().__init__(message)
        self.process, self.rank, self.rank_reported = process, rank, rank_reported
        self.returncode = returncode


class ClusterTimeout(ClusterError):
    """The cluster ran longer than the ``timeout`` given to :func:`launch`."""


@dataclass(frozen=True)
class LaunchResult:
    """A finished run: each worker's kvstore rank by launch index (None: never reported)."""
    worker_ranks: Dict[int, Optional[int]]
    seconds: float


class _Output:
    """Forwards the processes' lines to the launcher's streams, a whole line at a time."""

    def __init__(self, stdout: IO[str], stderr: IO[str]):
        self.stdout, self.stderr = stdout, stderr
        self._lock = threading.Lock()

    def write(self, stream: IO[str], text: str) -> None:
        with self._lock:
            stream.write(text)
            stream.flush()

    def note(self, message: str) -> None:
        self.write(self.stderr, f"[launch] {message}\n")


@dataclass
class _Running:
    spec: ClusterProcess
    popen: subprocess.Popen
    ssh_options: Tuple[str, ...]
    rank: Optional[int] = None
    remote_pid: Optional[int] = None
    threads: List[threading.Thread] = field(default_factory=list)

    def label(self) -> str:
        return self.spec.name if self.rank is None else f"{self.spec.name} rank {self.rank}"

    def describe(self) -> str:
        """The failure subject: a worker by its kvstore rank, any other process by its name."""
        if self.spec.host is None:
            place = f"on this machine, pid {self.popen.pid}"
        elif self.remote_pid is not None:
            place = f"on {self.spec.where}, pid {self.remote_pid} there"
        else:
            place = f"on {self.spec.where} through ssh pid {self.popen.pid}"
        if self.spec.role != "worker":
            return f"{self.spec.name} ({place})"
        if self.rank is not None:
            return f"worker rank {self.rank} ({self.spec.name} of the launch, {place})"
        return (f"worker rank {self.spec.index} ({self.spec.name} of the launch, {place}; it died "
                f"before reporting its kvstore rank, so this is its launch index)")

    def outcome(self) -> str:
        """How the process ended, e.g. ``was killed by SIGKILL``."""
        code = self.popen.returncode
        if code < 0:
            try:
                return f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"was killed by signal {-code}"
        if code == 255 and self.spec.host is not None:
            return ("exited with status 255 (ssh: the connection failed or broke, or the remote "
                    "process was killed by a signal)")
        return f"exited with status {code}"

    def forward(self, pipe: IO[bytes], stream: IO[str], output: _Output, parse: bool) -> None:
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if parse:
                rank = _RANK_PATTERN.fullmatch(line)
                pid = _PID_PATTERN.fullmatch(line)
                if rank:
                    self.rank = int(rank[1])
                elif pid and self.spec.host is not None and self.remote_pid is None:
                    self.remote_pid = int(pid[1])
                    continue  # the launcher's own bookkeeping, not the program's output
            output.write(stream, f"[{self.label()}] {line}\n")
        pipe.close()

    def stop_remote(self, grace: float) -> Optional[subprocess.Popen]:
        """Start stopping the remote process group over ssh (None: nothing remote to stop)."""
        if self.spec.host is None or self.remote_pid is None or self.popen.poll() == 0:
            return None  # ssh exits 0 only when the remote command did
        return subprocess.Popen(
            _remote_stop_argv(self.spec.host, self.remote_pid, grace, self.ssh_options),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to this process's group here (the process and everything it started)."""
        try:
            os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass  # the whole group has exited already

    def group_alive(self) -> bool:
        if self.popen.poll() is None:
            return True
        try:
            os.killpg(self.popen.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True


def launch(plan: ClusterPlan, *, timeout: Optional[float] = None, grace: float = 10.0,
           stdout: Optional[IO[str]] = None, stderr: Optional[IO[str]] = None,
           stall_timeout: Optional[float] = DEFAULT_STALL_TIMEOUT) -> LaunchResult:
    """Run ``plan`` (from :func:`plan_cluster`) and watch every process until the workers finish.

    Each process runs in its own process group; its output lines are forwarded to ``stdout`` and
    ``stderr`` (default: the launcher's) prefixed with its role and index, plus its kvstore rank
    once a worker reports it (:func:`create_kvstore` does). When every worker has exited 0 the
    servers and the scheduler get ``grace`` seconds to finish, then are stopped. When any process
    dies or exits non-zero, after ``timeout`` seconds, on Ctrl-C or on SIGTERM, every process group
    gets SIGTERM, then SIGKILL after ``grace`` seconds (remote ones through ssh too; a second
    Ctrl-C skips the wait) and :class:`ClusterError` (:class:`ClusterTimeout`) names the failed
    worker by its kvstore rank, or KeyboardInterrupt is re-raised. A local worker stopped or
    using no CPU for ``stall_timeout`` seconds fails the cluster the same way (None: no limit).
    Local processes are killed when the launcher dies, even by SIGKILL (Linux).
    """
    if stall_timeout is not None:
        check_positive(stall_timeout, "stall_timeout (seconds)", integer=False)
    if timeout is not None:
        check_positive(timeout, "timeout (seconds)", integer=False)
    if not (isinstance(grace, (int, float)) and grace >= 0):
        raise ValueError(f"grace must be a number of seconds >= 0, got {grace!r}")
    output = _Output(stdout or sys.stdout, stderr or sys.stderr)
    started = time.monotonic()
    running: List[_Running] = []
    interrupts = _Interrupts()
    try:
        for spec in plan.processes:
            with interrupts.deferred():  # a started process must be tracked before Ctrl-C acts
                running.append(_start(spec, output, plan.ssh_options))
        output.note(f"started {len(running)} processes (scheduler at {plan.scheduler_uri}:"
                    f"{plan.port}); each worker reports its kvstore rank when it connects")
        _supervise(running, output, started, timeout, grace, stall_timeout)
        return LaunchResult({r.spec.index: r.rank for r in running if r.spec.role == "worker"},
                            time.monotonic() - started)
    finally:
        try:
            with interrupts.deferred():  # nothing may outlive the launcher: Ctrl-C only hurries
                _stop(running, grace, output, hurry=interrupts.pending)
        finally:
            interrupts.restore()


def _start(spec: ClusterProcess, output: _Output, ssh_options: Tuple[str, ...]) -> _Running:
    if spec.host is None:
        env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
        env.update(spec.env)
    else:
        env = None  # the remote command sets the cluster variables itself
    try:
        argv = _die_with_parent(spec.argv, env, spec.cwd)  # ssh clients too: that ends sessions
        popen = subprocess.Popen(argv, env=env, cwd=spec.cwd,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, start_new_session=True)
    except FileNotFoundError:
        problem = (f"directory {spec.cwd!r} not found (--workdir)"
                   if spec.cwd and not os.path.isdir(spec.cwd)
                   else f"program {spec.argv[0]!r} not found; give its full path or fix PATH")
        raise FileNotFoundError(f"cannot start {spec.name}: {problem}") from None
    running = _Running(spec, popen, ssh_options)
    for pipe, stream, parse in ((popen.stdout, output.stdout, True),
                                (popen.stderr, output.stderr, False)):
        thread = threading.Thread(target=running.forward, args=(pipe, stream, output, parse),
                                  name=f"forward {spec.name}", daemon=True)
        thread.start()
        running.threads.append(thread)
    return running


# Run before a local process's program (Linux): ask the kernel to SIGKILL it when the launcher
# dies, however it dies (SIGKILL included), then exec the program under the same pid. A separate
# interpreter rather than Popen's preexec_fn, which is unsafe once the output threads run.
_DIE_WITH_PARENT = """
import ctypes, os, signal, sys
ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):  # the launcher died before the line above
    sys.exit(1)
os.execvp(sys.argv[2], sys.argv[2:])
"""


def _die_with_parent(argv: Sequence[str], env: Optional[Mapping[str, str]],
                     cwd: Optional[str]) -> List[str]:
    """``argv`` started so that it dies with this process (on Linux; elsewhere as it is)."""
    if not sys.platform.startswith("linux"):
        return list(argv)
    program = argv[0]
    if os.sep in program:
        found = os.access(os.path.join(cwd or "", program), os.X_OK)
    else:
        found = shutil.which(program, path=(env or os.environ).get("PATH")) is not None
    if not found:  # as Popen would say it, before the interpreter in between hides it
        raise FileNotFoundError(program)
    return [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *argv]


def _cpu_state(pid: int) -> Optional[Tuple[str, int]]:
    """``(state letter, CPU ticks used)`` of a local process from /proc, None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().decode().rsplit(")", 1)[1].split()
    except (OSError, IndexError, UnicodeDecodeError):
        return None
    return fields[0], int(fields[11]) + int(fields[12])  # state, utime + stime


class _StallWatch:
    """Notices a local worker stopped (SIGSTOP, Ctrl-Z: state T) for ``seconds``, which the others
    would wait for forever at the next synchronization, and local workers that all use no CPU
    time for ``seconds`` (a hung cluster: a deadlock, or a peer elsewhere that stopped)."""

    def __init__(self, workers: List["_Running"], seconds: Optional[float]):
        self.workers = [w for w in workers if w.spec.host is None]
        self.seconds = seconds
        self.stopped_since: Dict[int, float] = {}
        self.ticks: Optional[Tuple[int, ...]] = None
        self.idle_since = 0.0

    def check(self, now: float) -> None:
        if self.seconds is None or not self.workers:
            return
        states = [(w, _cpu_state(w.popen.pid)) for w in self.workers if w.popen.poll() is None]
        for w, state in states:
            if state is None or state[0] not in "Tt":
                self.stopped_since.pop(w.popen.pid, None)
                continue
            since = self.stopped_since.setdefault(w.popen.pid, now)
            if now - since > self.seconds:
                raise self._error(w, f"has been stopped (SIGSTOP or Ctrl-Z; `kill -CONT` resumes "
                                     f"it) for {self.seconds:g} s; the other workers wait for it")
        ticks = tuple(state[1] for _, state in states if state is not None)
        if ticks != self.ticks:
            self.ticks, self.idle_since = ticks, now
        elif states and now - self.idle_since > self.seconds:
            raise self._error(states[0][0], f"and every other worker on this machine have used no "
                                            f"CPU time for {self.seconds:g} s: the cluster hangs")

    def _error(self, w: "_Running", what: str) -> "ClusterError":
        return ClusterError(f"{w.describe()} {what}. Stopped the cluster (--stall-timeout sets "
                            f"this limit)", process=w.spec.name,
                            rank=w.rank if w.rank is not None else w.spec.index,
                            rank_reported=w.rank is not None)


def _supervise(running: List[_Running], output: _Output, started: float,
               timeout: Optional[float], grace: float,
               stall_timeout: Optional[float] = DEFAULT_STALL_TIMEOUT) -> None:
    workers = [r for r in running if r.spec.role == "worker"]
    others = [r for r in running if r.spec.role != "worker"]
    stalls = _StallWatch(workers, stall_timeout)
    ps_gone_since: Optional[float] = None
    while True:
        failed = [r for r in running if r.popen.poll() not in (None, 0)]
        if failed:
            raise _failure(failed)
        stalls.check(time.monotonic())
        if all(r.popen.poll() == 0 for r in workers):
            break
        now = time.monotonic()
        gone = [r for r in others if r.popen.poll() == 0]
        if gone and ps_gone_since is None:
            ps_gone_since = now
        if ps_gone_since is not None and now - ps_gone_since > _PS_EXIT_TOLERANCE:
            raise ClusterError(
                f"{gone[0].describe()} exited and the workers were still running "
                f"{_PS_EXIT_TOLERANCE:.0f} s later; they cannot continue without it (does the "
                f"command import mxnet in every role?). Stopped the cluster.",
                process=gone[0].spec.name,
                returncode=0)
        if timeout is not None and now - started > timeout:
            raise ClusterTimeout(f"the cluster ran longer than the timeout ({timeout:g} s); "
                                 f"stopped it")
        time.sleep(_POLL_INTERVAL)
    _wait_for(lambda: all(r.popen.poll() is not None for r in others), grace)
    for r in others:
        code = r.popen.poll()
        if code is None:
            output.note(f"{r.spec.name} was still running {grace:g} s after the workers finished; "
                        f"stopping it")
        elif code != 0:
            output.note(f"{r.describe()} {r.outcome()} after the workers finished")


def _failure(failed: List[_Running]) -> ClusterError:
    for r in failed:
        r.threads[0].join(timeout=2)  # read a rank line the process printed just before it died
    # Name the workers first: a server's or the scheduler's death is usually their consequence.
    failed = sorted(failed, key=lambda r: r.spec.role != "worker")
    first = failed[0]
    code = first.popen.returncode
    others = "".join(f"; {r.describe()} {r.outcome()}" for r in failed[1:])
    is_worker = first.spec.role == "worker"
    rank = (first.rank if first.rank is not None else first.spec.index) if is_worker else None
    return ClusterError(f"{first.describe()} {first.outcome()}{others}. Stopped the cluster.",
                        process=first.spec.name, rank=rank,
                        rank_reported=is_worker and first.rank is not None, returncode=code)


def _stop(running: List[_Running], grace: float, output: _Output,
          hurry: Callable[[], bool] = lambda: False) -> None:
    """SIGTERM every process group, SIGKILL what is left after ``grace`` seconds (or as soon as
    ``hurry()``), reap them all. Remote groups are stopped by an ssh command that escalates on
    the remote host itself.
    """
    alive = [r for r in running if r.group_alive()]
    if alive:
        output.note("stopping " + ", ".join(r.label() for r in alive))
    remote = [p for p in (r.stop_remote(grace) for r in running) if p is not None]
    for r in alive:
        r.signal(signal.SIGTERM)
    _wait_for(lambda: hurry() or not any(r.group_alive() for r in alive), grace)
    for r in alive:
        r.signal(signal.SIGKILL)
    _wait_for(lambda: hurry() or all(p.poll() is not None for p in remote),
              grace + _SSH_STOP_TIMEOUT)
    for p in remote:
        if p.poll() is None:
            p.kill()
            output.note(f"could not confirm a remote stop: {shlex.join(p.args[-2:])}")
        p.wait()
    for r in running:
        r.popen.wait()
        for thread in r.threads:
            thread.join(timeout=5)


def _wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(_POLL_INTERVAL)


class _Interrupts:
    """Ctrl-C, SIGTERM and SIGHUP as KeyboardInterrupt while a cluster runs (main thread only).

    Inside ``deferred()`` a signal is only recorded (``pending()``) and raised when the block
    ends, so that it cannot fall between starting a process and tracking it. Signals ignored
    when the launch began (``nohup``, background jobs) stay ignored.
    """

    def __init__(self):
        self._signum: Optional[int] = None
        self._deferring = False
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        self._signum = signum
        if not self._deferring:
            self._raise()

    def _raise(self) -> None:
        signum, self._signum = self._signum, None
        raise KeyboardInterrupt(f"launcher received {signal.Signals(signum).name}")

    def pending(self) -> bool:
        return self._signum is not None

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
            if self._signum is not None:
                self._raise()

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# ---------------------------------------------------------------------------------------------
# Command line (the `launch` subcommand)
# ---------------------------------------------------------------------------------------------

def add_launch_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``launch`` options to ``parser`` (the CLI's subparser or :func:`launch_main`'s)."""
    parser.add_argument("-n", "--num-workers", type=int, required=True, metavar="W",
                        help="number of workers")
    parser.add_argument("-s", "--num-servers", type=int, default=1, metavar="S",
                        help="number of parameter servers (default 1)")
    parser.add_argument("-H", "--hosts", metavar="FILE",
                        help="hosts file, one [user@]hostname per line (# comments); runs servers "
                             "and workers over ssh. Without it the cluster runs on this machine")
    parser.add_argument("--scheduler", choices=("local", "first-host"), default="local",
                        help="with --hosts: run the scheduler on this machine (default) or on the "
                             "first host")
    parser.add_argument("--scheduler-host", metavar="IP",
                        help="with --hosts: the scheduler machine's IP address as the hosts reach "
                             "it (default: found from the hosts)")
    parser.add_argument("--port", type=int, help=f"scheduler port (default: a free port on this "
                                                 f"machine, {DEFAULT_PORT} with --hosts)")
    parser.add_argument("--env", action="append", default=[], metavar="VAR=VALUE",
                        help="extra environment variable for every process (repeatable), e.g. "
                             "PS_VERBOSE=1 or DMLC_INTERFACE=eth0")
    parser.add_argument("--workdir", metavar="DIR",
                        help="directory the command runs in (default: the current one; with "
                             "--hosts it must exist on every host)")
    parser.add_argument("--ssh-options", default="", metavar="'OPTS'",
                        help="extra ssh options as one string, e.g. '-i ~/.ssh/cluster -p 2222'")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="stop the cluster and fail after this long (default: no limit)")
    parser.add_argument("--stall-timeout", type=float, default=DEFAULT_STALL_TIMEOUT,
                        metavar="SECONDS",
                        help=f"fail when a worker on this machine is stopped or uses no CPU for "
                             f"this long (default {DEFAULT_STALL_TIMEOUT:g}; 0: never)")
    parser.add_argument("--independent", action="store_true",
                        help="let every process train on its own (`train` without a dist_* "
                             "kvstore); without it such a command is refused")
    parser.add_argument("--grace", type=float, default=10.0, metavar="SECONDS",
                        help="how long processes get to exit before SIGKILL (default 10)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the exact command of every process and start nothing")
    # dest "program": the CLI keeps the subcommand's name in args.command.
    parser.add_argument("program", nargs=argparse.REMAINDER, metavar="COMMAND",
                        help="the program every process runs, after --, e.g. "
                             "-- python train.py --kvstore dist_sync")
    return parser


def _trains_on_its_own(command: Sequence[str]) -> bool:
    """Whether ``command`` is the package's ``train`` without a ``dist_*`` kvstore (the worker
    refuses that too; this says it before anything starts)."""
    words = list(command)
    package = any(Path(w).name == "gluon-modern-cnn" for w in words) or "gluon_modern_cnn" in words
    if not package or "train" not in words:
        return False
    kvstore = next((words[i + 1] for i, w in enumerate(words[:-1]) if w == "--kvstore"), "")
    kvstore = next((w.split("=", 1)[1] for w in words if w.startswith("--kvstore=")), kvstore)
    return not kvstore.startswith("dist")


def run_launch(args: argparse.Namespace) -> int:
    """Run the ``launch`` subcommand from parsed arguments; returns the exit status.

    Bad arguments raise ValueError/FileNotFoundError (the CLI prints them, exit status 2); a failed
    cluster prints the launcher's verdict and returns 1.
    """
    command = args.program[1:] if args.program[:1] == ["--"] else args.program
    env = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--env takes VAR=VALUE, got {item!r}")
        env[name] = value
    if getattr(args, "independent", False):
        env[INDEPENDENT_ENV_VAR] = "1"
    elif _trains_on_its_own(command):
        raise ValueError("the command trains without a cluster kvstore: every worker would train "
                         "its own model into the same output folder. Add --kvstore dist_sync to "
                         "train one model on the cluster, or pass --independent to run "
                         "independent copies")
    try:
        ssh_options = shlex.split(args.ssh_options)
    except ValueError as err:
        raise ValueError(f"--ssh-options {args.ssh_options!r}: {err}") from None
    plan = plan_cluster(command, num_workers=args.num_workers, num_servers=args.num_servers,
                        hosts=read_hosts_file(args.hosts) if args.hosts else None,
                        scheduler=args.scheduler, scheduler_host=args.scheduler_host,
                        port=args.port, env=env, workdir=args.workdir,
                        ssh_options=ssh_options)
    if args.dry_run:
        sys.stdout.write(plan.format())
        return 0
    try:
        result = launch(plan, timeout=args.timeout, grace=args.grace,
                        stall_timeout=args.stall_timeout or None)
    except ClusterError as err:
        print(f"[launch] FAILED: {err}", file=sys.stderr)
        return 1
    ranks = ", ".join(f"worker {i} = rank {r}" for i, r in sorted(result.worker_ranks.items()))
    print(f"[launch] all {len(result.worker_ranks)} workers finished in {result.seconds:.1f} s "
          f"({ranks})", file=sys.stderr)
    return 0


def launch_main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m gluon_modern_cnn.distributed [options] -- COMMAND``; returns the exit status."""
    parser = add_launch_arguments(argparse.ArgumentParser(
        prog="python -m gluon_modern_cnn.distributed",
        description="Run COMMAND as a ps-lite cluster (scheduler, servers, workers) for MXNet's "
                    "dist_sync kvstore, on this machine or over ssh, and stop it all when any "
                    "process fails."))
    args = parser.parse_args(argv)
    try:
        return run_launch(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("[launch] interrupted: stopped the cluster", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(launch_main())
