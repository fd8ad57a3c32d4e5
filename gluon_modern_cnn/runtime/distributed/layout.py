"""The layout of a parameter-server cluster: the hosts, and which process (scheduler, servers,
workers) runs where with which command and environment, locally or over ssh (a plan the launcher
runs, or prints as a dry run)."""
from __future__ import annotations

import ipaddress
import os
import re
import shlex
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ...checks import check_positive_int
from .worker import _CLUSTER_VARS, LAUNCHER_ENV_VAR

__all__ = ["DEFAULT_PORT", "Host", "read_hosts_file", "ClusterProcess", "ClusterPlan",
           "plan_cluster"]

#: The scheduler's port on multi-host runs unless ``port=`` is given (open it in the firewall).
DEFAULT_PORT = 9091

# Inherited values would break the new cluster (ps-lite keeps a preset DMLC_RANK, for instance).
_NOT_INHERITED = _CLUSTER_VARS + ("DMLC_RANK", "DMLC_NODE_HOST")
# Printed by the remote shell before it execs the command, so the launcher can kill it remotely.
_PID_LINE = "gluon-modern-cnn-launch: pid"
_PID_PATTERN = re.compile(r"gluon-modern-cnn-launch: pid (\d+)")
# Fail fast instead of prompting, and notice a dead host within about 30 s.
_SSH_DEFAULTS = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                 "-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=3")


_HOST_PATTERN = re.compile(r"(?:(?P<user>[A-Za-z0-9._][A-Za-z0-9._-]*)@)?"
                           r"(?P<host>[A-Za-z0-9_][A-Za-z0-9._:\[\]%-]*)")


@dataclass(frozen=True)
class Host:
    """A machine reached over ssh.

    Args:
        hostname: its name or IP address.
        user: the ssh user; default ``None`` (ssh's default user).
    """
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
    """The hosts of a hosts file: one ``[user@]hostname`` per line; ``#`` starts a comment.

    Args:
        path: the hosts file.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: for a line that is not a host (naming the line), or a file naming no host.
    """
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

    A process on this machine runs ``argv`` in ``cwd`` with ``env`` added to the launcher's
    environment; a remote process runs ``argv`` = the ssh command, whose remote command changes
    directory and sets ``env`` itself.

    Args:
        role: ``"scheduler"``, ``"server"`` or ``"worker"``.
        index: its number among the processes of its role, from 0.
        host: the remote host, or ``None`` for a process on this machine.
        env: the environment variables the process gets (``DMLC_*`` and the launcher's).
        argv: the command that starts it (the ssh command for a remote process).
        cwd: the working folder of a local process; default ``None``, the current directory.
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

    Args:
        processes: the processes, scheduler first, then servers, then workers.
        scheduler_uri: the IP address the ps-lite scheduler binds to.
        port: the scheduler's port.
        ssh_options: extra ssh options every remote process was planned with (default none).
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

    Without ``hosts`` all processes run here on 127.0.0.1 and the scheduler takes a free port.
    With ``hosts`` servers and workers go round-robin over them through ssh (worker i on host
    i mod N), so ``workdir`` must exist on every host. ps-lite binds the scheduler to the address
    it is given, so it must be an IP address of the scheduler's machine that every host reaches.

    Args:
        command: the program every process runs, as a list of arguments (not a string).
        num_workers: the number of workers (a positive integer).
        num_servers: the number of parameter servers (default 1).
        hosts: the hosts (:class:`Host` or ``"[user@]hostname"``); default ``None``, this machine.
        scheduler: ``"local"`` (default: this machine, which then needs the code too) or
            ``"first-host"`` (the first of ``hosts``); multi-host runs only.
        scheduler_host: the scheduler's IP address; default ``None``, found from the hosts.
        port: the scheduler's port; default ``None``, :data:`DEFAULT_PORT` with hosts, else a free
            port.
        env: environment variables added to every process (not the ``DMLC_*`` the launcher sets).
        workdir: the folder every process runs in; default ``None``, the current directory.
        ssh_options: extra options for every ssh command (default none).

    Raises:
        ValueError: for an empty command, a non-positive count, a bad port, scheduler option or
            environment variable, or a scheduler address that cannot be found.
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
