"""Running a parameter-server cluster: start every process of a plan, forward their output, watch
them, and stop them all as soon as one fails (ps-lite itself notices no failure: when a worker
dies the others block forever)."""
from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from ...checks import check_positive
from .layout import (_NOT_INHERITED, _PID_PATTERN, ClusterPlan, ClusterProcess, _remote_stop_argv,
                     plan_cluster, read_hosts_file)
from .worker import _RANK_PATTERN, INDEPENDENT_ENV_VAR

__all__ = ["DEFAULT_STALL_TIMEOUT", "ClusterError", "ClusterTimeout", "LaunchResult", "launch",
           "run_cluster"]

#: Seconds a local worker may be stopped (SIGSTOP, Ctrl-Z) or use no CPU before the launcher
#: declares it hung and stops the cluster (``--stall-timeout``).
DEFAULT_STALL_TIMEOUT = 120.0
_SSH_STOP_TIMEOUT = 20.0  # seconds a remote stop may take beyond the grace period
# A server or the scheduler may finish a moment before the last worker (ps-lite's final barrier);
# longer than this with workers still running means they lost it and would block forever.
_PS_EXIT_TOLERANCE = 30.0
_POLL_INTERVAL = 0.1


class ClusterError(RuntimeError):
    """A process of the cluster failed; the launcher has stopped all the others.

    Args:
        message: the launcher's verdict.
        process: the failed process's launch name (``"worker 1"``), if one failed.
        rank: the kvstore rank of a failed worker (its launch index when it died before reporting
            it).
        rank_reported: whether ``rank`` is the reported kvstore rank (False: the launch index).
        returncode: the failed process's exit status, if it exited.
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
    """A finished run.

    Args:
        worker_ranks: each worker's kvstore rank by launch index (``None``: never reported).
        seconds: wall-clock seconds from the first start to the end.
    """
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

    Each process runs in its own process group; its output lines are forwarded prefixed with its
    role and index, plus its kvstore rank once a worker reports it (:func:`create_kvstore` does).
    When every worker has exited 0 the servers and the scheduler get ``grace`` seconds to finish,
    then are stopped. When any process dies or exits non-zero, after ``timeout`` seconds, on
    Ctrl-C or on SIGTERM, every process group gets SIGTERM, then SIGKILL after ``grace`` seconds
    (remote ones through ssh too; a second Ctrl-C skips the wait). Local processes are killed when
    the launcher dies, even by SIGKILL (Linux).

    Args:
        plan: the cluster to run.
        timeout: seconds the whole cluster may run; default ``None``, no limit.
        grace: seconds between SIGTERM and SIGKILL, and that servers and scheduler get to finish
            after the workers (default 10, >= 0).
        stdout, stderr: where the processes' lines go; default ``None``, the launcher's streams.
        stall_timeout: seconds a local worker may be stopped or use no CPU before the cluster
            fails (default :data:`DEFAULT_STALL_TIMEOUT`; ``None``: no limit).

    Returns:
        A :class:`LaunchResult`.

    Raises:
        ClusterError: naming the failed worker by its kvstore rank (:class:`ClusterTimeout` after
            ``timeout``); KeyboardInterrupt is re-raised after the cluster stopped.
        ValueError: for a timeout, grace or stall timeout that is not a valid number of seconds.
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


def run_cluster(command: Sequence[str], *, num_workers: int, num_servers: int = 1,
                hosts_file: Optional[Union[str, "os.PathLike[str]"]] = None,
                scheduler: str = "local", scheduler_host: Optional[str] = None,
                port: Optional[int] = None, env: Optional[Mapping[str, str]] = None,
                independent: bool = False, workdir: Optional[str] = None,
                ssh_options: Sequence[str] = (), timeout: Optional[float] = None,
                grace: float = 10.0, stall_timeout: Optional[float] = DEFAULT_STALL_TIMEOUT,
                dry_run: bool = False) -> int:
    """Plan ``command`` as a cluster and run it (the ``launch`` command); returns the exit status.

    Args:
        command: the program every process runs.
        num_workers, num_servers: the cluster's size.
        hosts_file: run over ssh on these hosts (:func:`read_hosts_file`); else on this machine.
        scheduler, scheduler_host, port, workdir: see :func:`plan_cluster`.
        env: extra environment variables for every process.
        independent: let every process train on its own; without it the package's ``train``
            without a ``dist_*`` kvstore is refused.
        ssh_options: extra ssh arguments.
        timeout, grace, stall_timeout: see :func:`launch` (a ``stall_timeout`` of None or 0:
            never).
        dry_run: print every process's exact command and start nothing.

    Bad arguments raise ValueError or FileNotFoundError; a failed cluster prints the launcher's
    verdict and returns 1; Ctrl-C stops the cluster and raises KeyboardInterrupt.
    """
    env = dict(env or {})
    if independent:
        env[INDEPENDENT_ENV_VAR] = "1"
    elif _trains_on_its_own(command):
        raise ValueError("the command trains without a cluster kvstore: every worker would train "
                         "its own model into the same output folder. Add --kvstore dist_sync to "
                         "train one model on the cluster, or pass --independent to run "
                         "independent copies")
    plan = plan_cluster(command, num_workers=num_workers, num_servers=num_servers,
                        hosts=read_hosts_file(hosts_file) if hosts_file else None,
                        scheduler=scheduler, scheduler_host=scheduler_host, port=port, env=env,
                        workdir=workdir, ssh_options=list(ssh_options))
    if dry_run:
        sys.stdout.write(plan.format())
        return 0
    try:
        result = launch(plan, timeout=timeout, grace=grace, stall_timeout=stall_timeout or None)
    except ClusterError as err:
        print(f"[launch] FAILED: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        raise KeyboardInterrupt("stopped the cluster") from None
    ranks = ", ".join(f"worker {i} = rank {r}" for i, r in sorted(result.worker_ranks.items()))
    print(f"[launch] all {len(result.worker_ranks)} workers finished in {result.seconds:.1f} s "
          f"({ranks})", file=sys.stderr)
    return 0
