"""Multi-machine training with MXNet's parameter server (``gluon_modern_cnn.runtime.distributed``).

Real ps-lite clusters on 127.0.0.1 (a scheduler, one server and two workers running
``tests/dist_worker.py``, or ``gluon-modern-cnn train --kvstore dist_sync`` started by
``gluon-modern-cnn launch``), fake clusters of tiny programs for the launcher's bookkeeping, and
the exact ssh commands of a multi-host dry run. Every test that starts processes tags them through
the environment and afterwards asserts that none is left (killing any it finds).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator, List

import numpy
import pytest

import mxnet as mx
from mxnet import autograd, gluon

import dist_worker
from gluon_modern_cnn import cli
from gluon_modern_cnn.cli import launch_main
from gluon_modern_cnn.runtime import distributed
from gluon_modern_cnn.runtime.distributed import (ClusterError, ClusterTimeout, Host, WorkerInfo,
                                                  create_kvstore, is_chief, launch, plan_cluster,
                                                  read_hosts_file, shard_options,
                                                  trainer_batch_size, worker_info)
from gluon_modern_cnn.training.inference import evaluate_model

WORKER = Path(__file__).with_name("dist_worker.py")
TAG = "GLUON_MODERN_CNN_TEST_CLUSTER"  # environment variable that marks a test's processes
STEPS, BATCH_SIZE, LR, NUM_WORKERS = 12, 64, 1.0, 2


def tagged_processes(token: str) -> List[int]:
    """Pids of the live processes whose environment carries ``TAG=token``."""
    needle = f"{TAG}={token}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue  # gone meanwhile, or not ours to read
            if needle in environ.split(b"\0"):
                pids.append(int(entry.name))
    return pids


@contextlib.contextmanager
def no_process_left() -> Iterator[str]:
    """Yield a fresh tag; afterwards kill whatever still carries it and fail if anything did."""
    token = uuid.uuid4().hex
    try:
        yield token
    finally:
        left = tagged_processes(token)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert not left, f"processes left running after the test (now killed): {left}"


def worker_command(out: Path, data: Path, *extra: str) -> List[str]:
    return [sys.executable, str(WORKER), "--out", str(out), "--data", str(data),
            "--batch-size", str(BATCH_SIZE), "--lr", str(LR), *extra]


# ---------------------------------------------------------------------------------------------
# A real local cluster trains LeNet with batch norm under dist_sync
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory, fashion_mnist_root):
    """Run scheduler + 1 server + 2 workers for STEPS steps; return (output dir, LaunchResult)."""
    out = tmp_path_factory.mktemp("dist_sync")
    with no_process_left() as token:
        plan = plan_cluster(worker_command(out, fashion_mnist_root, "--steps", str(STEPS)),
                            num_workers=NUM_WORKERS, num_servers=1, env={TAG: token})
        result = launch(plan, timeout=120, grace=10, stdout=io.StringIO(), stderr=io.StringIO())
    return out, result


def test_every_worker_reports_its_kvstore_rank(trained):
    out, result = trained
    assert sorted(result.worker_ranks) == [0, 1]  # launch indices
    assert sorted(result.worker_ranks.values()) == [0, 1]  # ps-lite's ranks, as reported
    for rank in (0, 1):
        progress = json.loads((out / f"rank{rank}.json").read_text())
        assert (progress["rank"], progress["num_workers"]) == (rank, NUM_WORKERS)
        assert len(progress["losses"]) == STEPS


def test_workers_end_with_identical_trainable_parameters(trained):
    out, _ = trained
    final = [numpy.load(out / f"rank{rank}-final.npz") for rank in (0, 1)]
    assert sorted(final[0].files) == sorted(final[1].files)
    assert len(final[0].files) == 18  # 5 conv/dense (weight, bias), 4 batch norms (gamma, beta)
    start = numpy.load(out / "rank0-step1.npz")
    for name in final[0].files:
        # Both workers pull the same server copy after every step: bit-identical, not just close.
        assert numpy.array_equal(final[0][name], final[1][name]), name
    assert any(not numpy.allclose(start[name], final[0][name]) for name in final[0].files)


def test_batch_norm_running_statistics_stay_per_worker(trained):
    # The running mean/variance are not gradients (grad_req 'null'), so the kvstore never syncs
    # them: each worker averages the batches of its own shard.
    out, _ = trained
    running = [numpy.load(out / f"rank{rank}-running.npz") for rank in (0, 1)]
    assert sorted(running[0].files) == sorted(running[1].files)
    assert len(running[0].files) == 8
    assert all(not numpy.allclose(running[0][name], running[1][name]) for name in running[0].files)


def test_loss_goes_down(trained):
    out, _ = trained
    for rank in (0, 1):
        losses = json.loads((out / f"rank{rank}.json").read_text())["losses"]
        assert losses[0] > 2.0  # 10 classes, untrained: about ln 10
        assert numpy.mean(losses[-3:]) < numpy.mean(losses[:3]) - 0.5, losses


def test_dist_sync_sums_the_workers_gradients(trained, fashion_mnist_root, fresh_names):
    """After one step the weights are w - lr * (g_0 + g_1) / (BATCH_SIZE * NUM_WORKERS).

    g_r is the gradient of the summed loss over worker r's batch (batch norm over that batch
    only). The servers sum the workers' gradients and ``trainer.step(n)`` divides by n, which
    ``trainer_batch_size`` makes the global batch: a mean over all the workers' samples.
    """
    out, _ = trained
    net = dist_worker.build_net()  # the workers' seed: the weights rank 0 broadcast
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    grads = []
    for rank in (0, 1):
        X, y = next(iter(dist_worker.shard_loader(str(fashion_mnist_root), BATCH_SIZE, STEPS,
                                                  num_shards=NUM_WORKERS, shard_index=rank)))
        with autograd.record():
            l = loss(net(X), y)
        l.backward()
        grads.append({name: p.grad().asnumpy() for name, p in net.collect_params().items()
                      if p.grad_req != "null"})
    start = dist_worker.parameters(net, trainable=True)
    after = numpy.load(out / "rank1-step1.npz")
    assert sorted(after.files) == sorted(start)
    global_batch = BATCH_SIZE * NUM_WORKERS
    for name, w in start.items():
        summed = grads[0][name] + grads[1][name]
        numpy.testing.assert_allclose(after[name], w - LR * summed / global_batch,
                                      rtol=1e-5, atol=1e-6, err_msg=name)
    # Not an average of the workers' gradients (that would be half the step).
    assert any(not numpy.allclose(after[name], w - LR * summed / 2 / global_batch, atol=1e-6)
               for name, w in start.items() for summed in [grads[0][name] + grads[1][name]])


# ---------------------------------------------------------------------------------------------
# The package's own commands: `launch` running `train --kvstore dist_sync`
# ---------------------------------------------------------------------------------------------

# Runs the command in a fresh folder per process, named by role, so that whatever a process writes
# (`--out run` is relative) shows which process wrote it.
OWN_FOLDER = 'cd "$(mktemp -d "$PROCESS_DIRS/$DMLC_ROLE-XXXXXX")" && exec "$@"'
RUN_FILES = ["curve.png", "history.json", "model.params", "model.params.json", "settings.json"]


def test_launch_trains_with_the_train_command_and_rank_0_alone_writes(tmp_path,
                                                                       fashion_mnist_root,
                                                                       capsys):
    folders = tmp_path / "processes"
    folders.mkdir()
    train = [sys.executable, "-m", "gluon_modern_cnn", "train", "lenet_bn", "--kvstore",
             "dist_sync", "--subset", "1024", "--epochs", "2", "--batch-size", "64",
             "--data-root", str(fashion_mnist_root), "--out", "run"]
    with no_process_left() as token:
        launched = subprocess.run(
            [sys.executable, "-m", "gluon_modern_cnn", "launch", "-n", "2", "-s", "1",
             "--timeout", "120", "--env", f"{TAG}={token}", "--env", f"PROCESS_DIRS={folders}",
             "--", "sh", "-c", OWN_FOLDER, "sh", *train],
            env={**os.environ, TAG: token}, capture_output=True, text=True, timeout=180)
    assert launched.returncode == 0, launched.stderr
    assert "[launch] all 2 workers finished" in launched.stderr
    written = {folder.name.split("-")[0]: sorted(str(p.relative_to(folder))
                                                 for p in folder.rglob("*"))
               for folder in folders.iterdir() if any(folder.iterdir())}
    # One worker wrote the run, no other process wrote anything.
    assert written == {"worker": ["run", *(f"run/{name}" for name in RUN_FILES)]}, written
    assert sorted(f.name.split("-")[0] for f in folders.iterdir()) == [
        "scheduler", "server", "worker", "worker"]
    (run,) = folders.glob("worker-*/run")
    # The book's two result lines, from rank 0 only.
    results = [line for line in launched.stdout.splitlines() if "acc" in line or "/sec" in line]
    assert [line.split("] ")[0].split()[-1] for line in results] == ["0", "0"], launched.stdout
    assert results[1].endswith(" examples/sec on cpu(0)")
    settings = json.loads((run / "settings.json").read_text())
    assert settings["cluster"] == {"kvstore": "dist_sync", "num_workers": 2,
                                   "step_batch_size": 128}
    epochs = json.loads((run / "history.json").read_text())["epochs"]
    assert [e["examples"] for e in epochs] == [512, 512]  # rank 0's half of the 1024 images
    assert epochs[1]["train_loss"] < epochs[0]["train_loss"] - 0.3, epochs
    # model.params holds the final weights with rank 0's batch-norm statistics: they reproduce
    # the test accuracy rank 0 reported.
    accuracy, count = evaluate_model("lenet_bn", run / "model.params", batch_size=64,
                                     subset=1024, data_root=fashion_mnist_root,
                                     device=mx.cpu())
    assert (accuracy, count) == (epochs[1]["test_acc"], 1024)
    # Such a run has no checkpoint to resume from, and says so.
    capsys.readouterr()
    assert cli.main(["train", "lenet_bn", "--resume", str(run)]) == 2
    assert "trained on a cluster (dist_sync, 2 workers), which keeps no checkpoint" in \
        capsys.readouterr().err


def test_cluster_commands_refuse_what_cannot_work(tmp_path, capsys, monkeypatch):
    for var in distributed.worker._CLUSTER_VARS:
        monkeypatch.delenv(var, raising=False)
    assert cli.main(["train", "lenet_bn", "--kvstore", "dist_sync", "--out",
                     str(tmp_path / "run")]) == 2
    assert "needs a parameter-server cluster" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    assert cli.main(["train", "lenet_bn", "--kvstore", "dist_sync", "--resume",
                     str(tmp_path)]) == 2
    assert "--resume cannot be combined with --kvstore dist_sync" in capsys.readouterr().err
    assert cli.main(["launch", "-n", "2", "--dry-run"]) == 2
    assert "gluon-modern-cnn launch: error: no command to run" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Failures: a killed worker, a fake cluster's bookkeeping, Ctrl-C
# ---------------------------------------------------------------------------------------------

def _wait_for_file(path: Path, ready, launcher: subprocess.Popen, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if launcher.poll() is not None:
            pytest.fail(f"the launcher exited early ({launcher.returncode}): "
                        f"{launcher.communicate()[1]}")
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            content = json.loads(path.read_text())
            if ready(content):
                return content
        time.sleep(0.1)
    pytest.fail(f"{path} was not ready after {seconds} s")


def test_killed_worker_stops_the_cluster_and_is_named_by_rank(tmp_path, fashion_mnist_root):
    with no_process_left() as token:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "gluon_modern_cnn.distributed", "-n", "2", "--timeout", "120",
             "--env", f"{TAG}={token}", "--",
             *worker_command(tmp_path, fashion_mnist_root, "--steps", "50", "--epochs", "1000",
                             "--step-delay", "0.1")],
            env={**os.environ, TAG: token}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        try:
            victim = _wait_for_file(tmp_path / "rank1.json", lambda p: len(p["losses"]) >= 2,
                                    launcher, seconds=60)
            assert len(tagged_processes(token)) == 5  # launcher, scheduler, server, 2 workers
            os.kill(victim["pid"], signal.SIGKILL)
            killed = time.monotonic()
            _, stderr = launcher.communicate(timeout=60)
            elapsed = time.monotonic() - killed
        finally:
            if launcher.poll() is None:
                launcher.kill()
                launcher.communicate()
        assert launcher.returncode == 1, stderr
        assert elapsed < 60
        verdict = [line for line in stderr.splitlines() if "FAILED" in line]
        assert verdict and "worker rank 1 (" in verdict[0], stderr
        assert f"pid {victim['pid']}" in verdict[0] and "was killed by SIGKILL" in verdict[0]
        assert tagged_processes(token) == []
    print(f"launcher exited {elapsed:.1f} s after the worker was killed")


# A stand-in for the training program: every role's behaviour is set by FAKE_MODE.
FAKE = """
import os, sys, time
role, mode, folder = os.environ["DMLC_ROLE"], os.environ["FAKE_MODE"], os.environ["FAKE_DIR"]
if role != "worker":
    if mode == "server-quits" and role == "server":
        sys.exit(0)
    time.sleep(60)
    sys.exit(0)
try:  # the first worker to get here plays the failing part
    os.close(os.open(os.path.join(folder, "first"), os.O_CREAT | os.O_EXCL))
    first = True
except FileExistsError:
    first = False
if mode == "exit-before-rank" and first:
    sys.exit(3)
if mode in ("exit-after-rank", "finish"):
    rank = 1 if first else 0
    print(RANK_LINE.format(rank=rank, num_workers=2), flush=True)
    with open(os.path.join(folder, f"pid{rank}"), "w") as f:
        f.write(str(os.getpid()))
    if mode == "finish":
        sys.exit(0)
    if first:
        time.sleep(0.5)
        sys.exit(4)
time.sleep(60)
""".replace("RANK_LINE", repr(distributed.worker._RANK_LINE))


def fake_plan(tmp_path: Path, mode: str, token: str):
    return plan_cluster([sys.executable, "-c", FAKE], num_workers=2, num_servers=1,
                        env={TAG: token, "FAKE_MODE": mode, "FAKE_DIR": str(tmp_path)})


def run_fake(tmp_path: Path, mode: str, **options):
    """Run a fake cluster; return (ClusterError or LaunchResult, seconds, launcher's stderr)."""
    stderr = io.StringIO()
    with no_process_left() as token:
        started = time.monotonic()
        try:
            outcome = launch(fake_plan(tmp_path, mode, token), grace=1, stdout=io.StringIO(),
                             stderr=stderr, **options)
        except ClusterError as err:
            outcome = err
    return outcome, time.monotonic() - started, stderr.getvalue()


def test_failed_worker_is_named_by_the_rank_it_reported(tmp_path):
    err, seconds, _ = run_fake(tmp_path, "exit-after-rank", timeout=30)
    assert isinstance(err, ClusterError) and not isinstance(err, ClusterTimeout)
    assert (err.rank, err.rank_reported, err.returncode) == (1, True, 4)
    pid = (tmp_path / "pid1").read_text()
    assert f"worker rank 1 ({err.process} of the launch, on this machine, pid {pid})" in str(err)
    assert "exited with status 4" in str(err) and seconds < 10


def test_worker_dead_before_reporting_is_named_by_launch_index(tmp_path):
    err, seconds, _ = run_fake(tmp_path, "exit-before-rank", timeout=30)
    assert isinstance(err, ClusterError)
    assert not err.rank_reported and err.process == f"worker {err.rank}"
    assert f"worker rank {err.rank} (worker {err.rank} of the launch" in str(err)
    assert "died before reporting its kvstore rank" in str(err)
    assert err.returncode == 3 and seconds < 10


def test_timeout_stops_a_hanging_cluster(tmp_path):
    err, seconds, _ = run_fake(tmp_path, "hang", timeout=1.5)
    assert isinstance(err, ClusterTimeout) and "timeout (1.5 s)" in str(err)
    assert seconds < 10


def test_server_that_quits_early_fails_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(distributed.running, "_PS_EXIT_TOLERANCE", 1.0)
    err, seconds, _ = run_fake(tmp_path, "server-quits", timeout=30)
    assert isinstance(err, ClusterError) and err.process == "server 0"
    assert "workers were still running" in str(err) and seconds < 10


def test_finished_workers_end_the_run_and_servers_are_stopped(tmp_path):
    result, seconds, stderr = run_fake(tmp_path, "finish", timeout=30)
    assert sorted(result.worker_ranks.values()) == [0, 1]
    assert "scheduler 0 was still running 1 s after the workers finished" in stderr
    assert seconds < 10


def test_ctrl_c_stops_every_process(tmp_path):
    with no_process_left() as token:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "gluon_modern_cnn.distributed", "-n", "2", "--grace", "2",
             "--env", f"{TAG}={token}", "--env", "FAKE_MODE=hang", "--env", f"FAKE_DIR={tmp_path}",
             "--", sys.executable, "-c", FAKE],
            env={**os.environ, TAG: token}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        try:
            deadline = time.monotonic() + 90   # five Python processes start (slowly on a busy CI)
            while len(tagged_processes(token)) < 5 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(tagged_processes(token)) == 5
            launcher.send_signal(signal.SIGINT)
            _, stderr = launcher.communicate(timeout=30)
        finally:
            if launcher.poll() is None:
                launcher.kill()
                launcher.communicate()
        assert launcher.returncode == 130, stderr
        assert "interrupted: stopped the cluster" in stderr
        assert tagged_processes(token) == []


# ---------------------------------------------------------------------------------------------
# Multi-host: hosts file and the exact ssh commands
# ---------------------------------------------------------------------------------------------

SSH = ("ssh -o BatchMode=yes -o ConnectTimeout=10 -o ServerAliveInterval=10 "
       "-o ServerAliveCountMax=3 -i /keys/id")


def test_dry_run_prints_the_exact_ssh_commands(tmp_path, capsys):
    hosts = tmp_path / "hosts"
    hosts.write_text("# the cluster\nalice@node1\n\nnode2   # second machine\n")
    status = launch_main(["--dry-run", "-n", "3", "-s", "2", "-H", str(hosts),
                          "--scheduler-host", "10.0.0.1", "--port", "9000",
                          "--env", "PS_VERBOSE=1", "--workdir", "/srv/my project",
                          "--ssh-options", "-i /keys/id",
                          "--", "python", "train.py", "--kvstore", "dist_sync", "--tag", "it's"])
    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "# ps-lite scheduler at 10.0.0.1:9000"
    env = ("DMLC_PS_ROOT_URI=10.0.0.1 DMLC_PS_ROOT_PORT=9000 DMLC_NUM_SERVER=2 DMLC_NUM_WORKER=3 "
           "GLUON_MODERN_CNN_LAUNCHER=1 PYTHONUNBUFFERED=1 PS_VERBOSE=1")
    command = "python train.py --kvstore dist_sync --tag 'it'\"'\"'s'"

    def remote(role, host):
        script = (f"echo gluon-modern-cnn-launch: pid $$; cd '/srv/my project' && "
                  f"exec env DMLC_ROLE={role} {env} {command}")
        return f"{SSH} {host} {shlex.quote(script)}"

    assert lines[1:] == [
        "# scheduler 0 on this machine",
        f"cd '/srv/my project' && env DMLC_ROLE=scheduler {env} {command}",
        "# server 0 on alice@node1", remote("server", "alice@node1"),
        "# server 1 on node2", remote("server", "node2"),
        "# worker 0 on alice@node1", remote("worker", "alice@node1"),
        "# worker 1 on node2", remote("worker", "node2"),
        "# worker 2 on alice@node1", remote("worker", "alice@node1"),
    ]
    # Copy-pasteable: a shell splits each line back into the arguments the launcher runs.
    plan = plan_cluster(["python", "train.py", "--kvstore", "dist_sync", "--tag", "it's"],
                        num_workers=3, num_servers=2, hosts=read_hosts_file(hosts),
                        scheduler_host="10.0.0.1", port=9000, env={"PS_VERBOSE": "1"},
                        workdir="/srv/my project", ssh_options=["-i", "/keys/id"])
    assert [shlex.split(line) for line in lines[8::2]] == [list(p.argv) for p in plan.workers]
    assert shlex.split(plan.workers[2].argv[-1])[-6:] == [
        "python", "train.py", "--kvstore", "dist_sync", "--tag", "it's"]


def test_remote_command_keeps_arguments_environment_and_pid(tmp_path):
    # What sshd does with the remote command: hand it to the login shell with -c.
    workdir = tmp_path / "a dir"
    workdir.mkdir()
    script = ("import json, os, sys; print(json.dumps([sys.argv[1:], os.getcwd(), os.getpid(), "
              "os.environ['DMLC_ROLE'], os.environ['DMLC_NUM_WORKER'], os.environ['NOTE']]))")
    plan = plan_cluster([sys.executable, "-c", script, "it's", "a b", "$HOME", "*", ""],
                        num_workers=2, hosts=["127.0.0.1"], scheduler_host="127.0.0.1",
                        env={"NOTE": "x y;z"}, workdir=str(workdir))
    worker = plan.workers[1]
    assert worker.argv[:-2] == ("ssh", *distributed.layout._SSH_DEFAULTS)
    shell = subprocess.Popen(["sh", "-c", worker.argv[-1]], stdout=subprocess.PIPE, text=True)
    stdout, _ = shell.communicate(timeout=30)
    pid_line, result = stdout.splitlines()
    assert pid_line == f"gluon-modern-cnn-launch: pid {shell.pid}"
    # exec keeps the shell's pid: the echoed pid is the command's, hence its process group's.
    assert json.loads(result) == [["it's", "a b", "$HOME", "*", ""], str(workdir), shell.pid,
                                  "worker", "2", "x y;z"]


def test_scheduler_on_the_first_host(tmp_path):
    plan = plan_cluster(["python", "train.py"], num_workers=2, num_servers=1,
                        hosts=["alice@10.0.0.5", Host("10.0.0.6")], scheduler="first-host")
    placement = [(p.name, str(p.host)) for p in plan.processes]
    assert placement == [("scheduler 0", "alice@10.0.0.5"), ("server 0", "alice@10.0.0.5"),
                         ("worker 0", "alice@10.0.0.5"), ("worker 1", "10.0.0.6")]
    assert (plan.scheduler_uri, plan.port) == ("10.0.0.5", distributed.DEFAULT_PORT)
    assert all(p.env["DMLC_PS_ROOT_URI"] == "10.0.0.5" for p in plan.processes)


def test_local_plan_uses_loopback_and_a_free_port():
    plan = plan_cluster(["python", "train.py"], num_workers=3, num_servers=2)
    assert [p.name for p in plan.processes] == ["scheduler 0", "server 0", "server 1",
                                                "worker 0", "worker 1", "worker 2"]
    assert all(p.host is None and p.argv == ("python", "train.py") for p in plan.processes)
    env = plan.processes[0].env
    assert (env["DMLC_PS_ROOT_URI"], env["DMLC_NODE_HOST"]) == ("127.0.0.1", "127.0.0.1")
    assert (env["DMLC_NUM_SERVER"], env["DMLC_NUM_WORKER"]) == ("2", "3")
    assert 0 < plan.port < 65536 and env["DMLC_PS_ROOT_PORT"] == str(plan.port)


def test_hosts_file_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="hosts file .*missing.* does not exist"):
        read_hosts_file(tmp_path / "missing")
    bad = tmp_path / "bad"
    bad.write_text("node1\nnode2 slots=4\n")
    with pytest.raises(ValueError, match=r"bad, line 2: 'node2 slots=4' is not a host"):
        read_hosts_file(bad)
    empty = tmp_path / "empty"
    empty.write_text("# nobody yet\n\n")
    with pytest.raises(ValueError, match="names no host"):
        read_hosts_file(empty)
    assert Host.parse(" bob@node-3.lan ") == Host("node-3.lan", "bob")
    with pytest.raises(ValueError, match="is not a host"):
        Host.parse("-oProxyCommand=evil")  # would be an ssh option


@pytest.mark.parametrize("options, message", [
    ({"num_workers": 0}, "num_workers must be a positive integer"),
    ({"num_servers": True}, "num_servers must be a positive integer"),
    ({"command": "python train.py"}, "must be a list of arguments"),
    ({"command": []}, "no command to run"),
    ({"env": {"DMLC_ROLE": "worker"}}, "DMLC_ROLE is set by the launcher"),
    ({"env": {"BAD NAME": "1"}}, "not an environment variable name"),
    ({"port": 70000}, "port must be an integer from 1 to 65535"),
    ({"scheduler": "first-host"}, "apply to multi-host runs"),
    ({"hosts": ["n1"], "scheduler": "elsewhere"}, "scheduler must be 'local'"),
    ({"hosts": []}, "hosts is empty"),
])
def test_plan_rejects_bad_input(options, message):
    arguments = {"command": ["python", "train.py"], "num_workers": 2, **options}
    with pytest.raises(ValueError, match=message):
        plan_cluster(arguments.pop("command"), **arguments)


def test_launch_main_reports_bad_arguments(capsys):
    assert launch_main(["-n", "2", "--env", "NOVALUE", "--", "python", "x.py"]) == 2
    assert "--env takes VAR=VALUE, got 'NOVALUE'" in capsys.readouterr().err
    assert launch_main(["-n", "2"]) == 2
    assert "no command to run" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Worker side
# ---------------------------------------------------------------------------------------------

def test_create_kvstore_checks_the_name_and_the_cluster(monkeypatch):
    with pytest.raises(ValueError, match="unknown kvstore 'dist'; choose one of local, device, "
                                         "dist_sync, dist_async, dist_sync_device"):
        create_kvstore("dist")
    for var in distributed.worker._CLUSTER_VARS:
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ValueError,
                       match=r"needs a parameter-server cluster.*gluon-modern-cnn launch"):
        create_kvstore("dist_sync")
    kv = create_kvstore("local")
    assert kv.type == "local" and worker_info(kv) == WorkerInfo(0, 1) and is_chief(kv)


def test_worker_helpers_follow_rank_and_kvstore_type():
    sync = SimpleNamespace(type="dist_sync", rank=1, num_workers=4)
    assert worker_info(sync) == WorkerInfo(1, 4) and not is_chief(sync)
    assert shard_options(sync) == {"num_shards": 4, "shard_index": 1}
    assert shard_options(None) == {"num_shards": 1, "shard_index": 0} and is_chief(None)
    assert trainer_batch_size(sync, 64) == 256
    assert trainer_batch_size(SimpleNamespace(type="dist_sync_device", num_workers=3), 64) == 192
    assert trainer_batch_size(SimpleNamespace(type="dist_async", num_workers=4), 64) == 64
    assert trainer_batch_size(mx.kv.create("device"), 64) == 64
    assert trainer_batch_size(None, 64) == 64
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        trainer_batch_size(sync, 0)
