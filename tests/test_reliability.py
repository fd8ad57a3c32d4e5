"""Fault injection: no run lost, no silent wrong answer, no traceback, no orphaned process.

Each test is one case of docs/reliability.md's table: two runs into one folder, a dead owner's
claim, a full disk (a small tmpfs) and a read-only file system (a read-only bind mount), a
parameter file moved away from its run or holding NaN, images of every Pillow mode and damaged
ones, networks too narrow for the labels, SIGTERM and resume, and a launcher killed with SIGKILL
or a worker stopped with SIGSTOP. Mounting needs root: those tests are skipped elsewhere.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import mxnet as mx
import numpy
import pytest
from mxnet import autograd
from mxnet.gluon import nn
from PIL import Image

from gluon_modern_cnn import cli

from gluon_modern_cnn.runtime import distributed
from gluon_modern_cnn.training.checkpoint import (CheckpointError, load_checkpoint, load_parameters,
                                         save_parameters)
from gluon_modern_cnn.data import FastImageLoader
from gluon_modern_cnn.training.experiment import OUTPUT_FILES, resolve_settings, train_model
from gluon_modern_cnn.runtime.files import (CLAIM_FILE, OutputError, RunFolderBusy, atomic_write,
                                    claim_run_folder)
from gluon_modern_cnn.training.inference import load_trained, read_image, trained_resize
from gluon_modern_cnn.models import batch_norm
from gluon_modern_cnn.registry import get_model
from gluon_modern_cnn.training import fit
from test_cli import finish, run, start  # the command-line runners
from test_distributed import TAG, no_process_left, tagged_processes

TRAIN = ("train", "lenet_bn", "--epochs", "1", "--subset", "256", "--device", "cpu")
needs_root = pytest.mark.skipif(os.geteuid() != 0 if hasattr(os, "geteuid") else True,
                                reason="mounting a tmpfs or a read-only bind mount needs root")


def _error(capsys) -> str:
    """The CLI's stderr, checked to be a one-line message without a traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, fashion_mnist_root):
    """LeNet with batch norm trained for one epoch on 512 images resized to 32x32."""
    out = tmp_path_factory.mktemp("tiny") / "run"
    settings = resolve_settings("lenet_bn", num_epochs=1, resize=32, subset=512, seed=0)
    train_model(settings, device=mx.cpu(), data_root=fashion_mnist_root, out=out,
                progress=False, quiet=True)
    return out


# ---------------------------------------------------------------------------------------------
# Priority 1: no run lost
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("trial", range(3))
def test_two_runs_into_one_folder_leave_one_whole_run(tmp_path, fashion_mnist_root, trial):
    out = tmp_path / "run"
    runs = [start(*TRAIN, "--seed", seed, "--out", out, "--data-root", fashion_mnist_root,
                  cwd=tmp_path) for seed in (1, 2)]
    results = [finish(p) for p in runs]
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 2], [r.stderr for r in results]
    loser = next(r for r in results if r.returncode == 2)
    assert "Traceback" not in loser.stderr
    assert ("is in use by process" in loser.stderr
            or "already holds a training run" in loser.stderr), loser.stderr
    winner_seed = 1 + [r.returncode for r in results].index(0)
    # Every file of the folder is the winner's.
    settings = json.loads((out / "settings.json").read_text())["settings"]
    assert settings["seed"] == winner_seed
    assert load_checkpoint(out / OUTPUT_FILES["checkpoint"]).settings["seed"] == winner_seed
    assert not (out / CLAIM_FILE).exists()


def test_overwrite_of_a_live_run_is_refused_and_a_dead_owner_is_taken_over(
        tmp_path, fashion_mnist_root, capsys):
    out = tmp_path / "repro" / "lenet_bn"  # where `reproduce 7.5 --out repro` trains lenet_bn
    live = start("train", "lenet_bn", "--epochs", "5", "--subset", "4096", "--device", "cpu",
                 "--out", out, "--data-root", fashion_mnist_root, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not (out / "settings.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (out / "settings.json").exists()
        for extra in (("--overwrite",), ()):
            assert cli.main([*TRAIN, "--out", str(out), "--data-root",
                             str(fashion_mnist_root), *extra]) == 2
            message = _error(capsys)
            assert f"is in use by process {live.pid} on " in message, message
        assert cli.main(["reproduce", "7.5", "--model", "lenet_bn", "--epochs", "1",
                         "--out", str(tmp_path / "repro"), "--data-root",
                         str(fashion_mnist_root)]) == 2
        assert f"is in use by process {live.pid}" in _error(capsys)
    finally:
        live.send_signal(signal.SIGKILL)
        finish(live)
    # The dead run's claim is taken over; its leftovers (no checkpoint yet) block nothing.
    had_checkpoint = (out / OUTPUT_FILES["checkpoint"]).exists()
    code = cli.main([*TRAIN, "--out", str(out), "--data-root", str(fashion_mnist_root)]
                    + (["--overwrite"] if had_checkpoint else []))
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"taking over {out} from process {live.pid}" in err


def test_a_run_that_failed_before_its_first_checkpoint_blocks_no_rerun(tmp_path,
                                                                        fashion_mnist_root,
                                                                        capsys):
    out = tmp_path / "run"
    args = [*TRAIN, "--out", str(out), "--data-root", str(fashion_mnist_root)]
    assert cli.main([*args, "--lr", "1e38", "--batch-size", "32"]) == 2  # diverges at once
    assert "the training loss became" in _error(capsys)
    assert (out / "settings.json").exists() and not (out / "checkpoint.zip").exists()
    assert cli.main(args) == 0
    assert "left by a run that stopped before its first checkpoint" in capsys.readouterr().err


def test_a_claim_is_exclusive_and_released(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom gluon_modern_cnn.runtime.files import "
         "claim_run_folder\nwith claim_run_folder(sys.argv[1]):\n    print('held', flush=True)"
         "\n    time.sleep(60)\n", str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(RunFolderBusy, match=f"process {holder.pid} on "):
            with claim_run_folder(tmp_path):
                pass
    finally:
        holder.kill()
        holder.communicate()
    with claim_run_folder(tmp_path):
        with claim_run_folder(tmp_path):  # re-entrant in one process
            assert (tmp_path / CLAIM_FILE).exists()
    assert not (tmp_path / CLAIM_FILE).exists()


def test_launch_refuses_workers_that_would_train_independently(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(distributed.LAUNCHER_ENV_VAR, "1")
    assert cli.main([*TRAIN, "--out", str(tmp_path / "run")]) == 2
    assert "every process would train on its own" in _error(capsys)
    assert not (tmp_path / "run").exists()
    monkeypatch.delenv(distributed.LAUNCHER_ENV_VAR)
    for command in (["gluon-modern-cnn", "train", "lenet_bn"],
                    [sys.executable, "-m", "gluon_modern_cnn", "train", "lenet_bn", "--kvstore",
                     "device"]):
        assert cli.main(["launch", "-n", "2", "--", *command]) == 2
        assert "every worker would train its own model into the same output folder" in _error(
            capsys)
    assert distributed.running._trains_on_its_own(["gluon-modern-cnn", "train", "lenet_bn",
                                           "--kvstore=dist_sync"]) is False


# ---------------------------------------------------------------------------------------------
# Priority 2: no silent wrong answer
# ---------------------------------------------------------------------------------------------

def test_a_moved_parameter_file_keeps_its_input_size(tiny_run, tmp_path, capsys):
    about = json.loads((tiny_run / "model.params.json").read_text())
    assert about == {"model": "lenet_bn", "resize": 32, "input_shape": [1, 32, 32]}
    loose = tmp_path / "weights.params"
    loose.write_bytes((tiny_run / "model.params").read_bytes())
    loose.with_name("weights.params.json").write_bytes(
        (tiny_run / "model.params.json").read_bytes())
    assert trained_resize("lenet_bn", loose) == 32
    net, resize = load_trained("lenet_bn", loose, device=mx.cpu())
    assert resize == 32
    # Without it, the size is the book's: here it does not fit, and the error says so.
    loose.with_name("weights.params.json").unlink()
    with pytest.raises(ValueError, match="do not fit 28x28 inputs.*pass it with --resize"):
        load_trained("lenet_bn", loose, device=mx.cpu())
    # Where the book's size fits, the command says that it assumed it and how to change that.
    net = get_model("lenet_bn")
    net.initialize()
    net(mx.np.zeros((1, 1, 28, 28)))
    save_parameters(net, tmp_path / "fresh.params")
    load_trained("lenet_bn", tmp_path / "fresh.params", device=mx.cpu())
    assert "assumed lenet_bn's book size 28x28" in capsys.readouterr().err
    # What a file of another model says about its size is not taken for this one.
    loose.with_name("weights.params.json").write_text(json.dumps({"model": "resnet18",
                                                                   "resize": 96}))
    assert trained_resize("lenet_bn", loose) is None


def test_nan_parameters_are_refused_naming_the_parameter(tiny_run, tmp_path, capsys):
    arrays = mx.npx.load(str(tiny_run / "model.params"))
    name = sorted(k for k in arrays if k.endswith("weight"))[0]
    broken = arrays[name].asnumpy()
    broken.flat[3] = numpy.nan
    arrays[name] = mx.np.array(broken)
    bad = tmp_path / "model.params"
    mx.npx.save(str(bad), arrays)
    (tmp_path / "model.params.json").write_bytes((tiny_run / "model.params.json").read_bytes())
    net = get_model("lenet_bn")
    with pytest.raises(CheckpointError, match=f"NaN or infinite values in {name}"):
        load_parameters(net, bad)
    image = tmp_path / "x.png"
    Image.new("L", (28, 28), 200).save(image)
    assert cli.main(["predict", "lenet_bn", "--params", str(bad), str(image),
                     "--device", "cpu"]) == 2
    assert name in _error(capsys)


def _gradient() -> numpy.ndarray:
    return numpy.tile(numpy.arange(0, 256, 4, dtype=numpy.uint8), (8, 1))  # 64 gray levels


@pytest.mark.parametrize("mode", ["I;16", "I", "F", "P", "LA", "RGBA", "CMYK", "RGB", "L"])
def test_images_of_every_mode_keep_their_full_range(tmp_path, mode):
    gray = _gradient()
    if mode == "I;16":
        image = Image.fromarray(gray.astype(numpy.uint16) * 257)  # 16-bit: 0..65535
        assert image.mode.startswith("I;16")
    elif mode == "I":
        image = Image.fromarray(gray.astype(numpy.int32) * 257, mode="I")
    elif mode == "F":
        image = Image.fromarray(gray.astype(numpy.float32) / 255, mode="F")
    elif mode == "CMYK":
        image = Image.fromarray(gray).convert("RGB").convert("CMYK")
    else:
        image = Image.fromarray(gray).convert(mode)
    path = tmp_path / ("x.tiff" if mode in ("I", "F", "CMYK") else "x.png")
    image.save(path)
    pixels = read_image(path)
    assert pixels.dtype == numpy.uint8
    assert numpy.abs(pixels.astype(int) - gray).max() <= 2, (mode, pixels[0])


def test_transparency_is_composited_on_black(tmp_path):
    rgba = numpy.zeros((4, 4, 4), numpy.uint8)
    rgba[..., :3] = 255
    rgba[:2, :, 3] = 255  # the top half opaque white, the bottom half fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "x.png")
    pixels = read_image(tmp_path / "x.png")
    assert (pixels[:2] == 255).all() and (pixels[2:] == 0).all()


def test_damaged_images_get_one_line_errors(tiny_run, tmp_path, monkeypatch, capsys):
    whole = tmp_path / "whole.png"
    Image.fromarray(numpy.random.default_rng(0).integers(0, 255, (64, 64), numpy.uint8)).save(
        whole)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(whole.read_bytes()[:400])
    with pytest.raises(ValueError, match="damaged or truncated image"):
        read_image(truncated)
    from PIL import ImageFile
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # as gluoncv.data sets it
    with pytest.raises(ValueError, match="damaged or truncated image"):
        read_image(truncated)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # left as it was
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64x64 is then a bomb
    with pytest.raises(ValueError, match="decompression bomb"):
        read_image(whole)
    for image in (truncated, whole):
        assert cli.main(["predict", "lenet_bn", "--params", str(tiny_run / "model.params"),
                         str(image), "--device", "cpu"]) == 2
        assert str(image) in _error(capsys)
    empty = tmp_path / "empty.npy"
    numpy.save(empty, numpy.zeros((0, 28), numpy.uint8))
    with pytest.raises(ValueError, match="empty array"):
        read_image(empty)


def _loader(n=64, classes=10, batch_size=32):
    rng = numpy.random.default_rng(0)
    return FastImageLoader(rng.integers(0, 255, (n, 28, 28), numpy.uint8),
                           numpy.arange(n) % classes, batch_size, prefetch=0)


@pytest.mark.parametrize("outputs", [5, 1])
def test_a_network_narrower_than_the_labels_is_refused_on_the_first_batch(outputs):
    net = nn.Sequential()
    net.add(nn.Dense(outputs))
    with pytest.raises(ValueError, match=f"outputs {outputs} value.*labels go up to 9"):
        fit(net, _loader(), _loader(), 1, lr=0.1, device=mx.cpu())


def test_empty_data_is_refused():
    net = nn.Sequential()
    net.add(nn.Dense(10))
    empty = FastImageLoader(numpy.zeros((0, 28, 28), numpy.uint8), numpy.zeros(0, int), 8)
    with pytest.raises(ValueError, match="train_iter has no batches"):
        fit(net, empty, _loader(), 1, lr=0.1, device=mx.cpu())
    with pytest.raises(ValueError, match="test_iter has no batches"):
        fit(net, _loader(), empty, 1, lr=0.1, device=mx.cpu())


def test_subset_is_recorded_truthfully_or_refused(tiny_run, tmp_path, fashion_mnist_root, capsys):
    run_settings = json.loads((tiny_run / "settings.json").read_text())
    assert run_settings["images"] == {"train": 512, "test": 512}
    assert cli.main([*TRAIN[:4], "--subset", "100000", "--out", str(tmp_path / "run"),
                     "--data-root", str(fashion_mnist_root)]) == 2
    assert "subset=100000 is more than the 60000 training images" in _error(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"num_classes": 0}, "num_classes must be a positive integer; got 0"),
    ({"num_classes": -1}, "got -1"), ({"num_classes": "ten"}, "got 'ten'"),
    ({"num_classes": 2.5}, "got 2.5"), ({"classes": 10}, "takes no argument classes"),
])
def test_get_model_names_a_wrong_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        get_model("resnet18", **kwargs)


def test_get_model_refuses_a_name_that_is_no_string():
    with pytest.raises(ValueError, match="a model name is a string"):
        get_model(None)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_checks_its_input_in_both_modes(training):
    X = mx.np.ones((2, 3, 4))
    stats = mx.np.ones((1, 3, 1))
    with autograd.record(train_mode=training):
        with pytest.raises(ValueError, match="got a 3-D input"):
            batch_norm(X, stats, stats, stats, stats, 1e-5, 0.9)


# ---------------------------------------------------------------------------------------------
# Priority 3: one short message, exit status 2
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _mounted(args, target: Path):
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", *args, str(target)], check=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


@needs_root
def test_a_full_disk_names_the_file_keeps_the_checkpoint_and_says_how_to_resume(
        tmp_path, fashion_mnist_root, capsys):
    # Room for the first epoch's checkpoint (~185 kB) and not for the second one's.
    with _mounted(["-t", "tmpfs", "-o", "size=320k", "tmpfs"], tmp_path / "disk") as disk:
        out = disk / "run"
        code = cli.main(["train", "lenet_bn", "--epochs", "3", "--subset", "256", "--device",
                         "cpu", "--out", str(out), "--data-root", str(fashion_mnist_root)])
        message = _error(capsys)
        assert code == 2
        assert "No space left on device" in message and str(out) in message
        assert "free space on that disk" in message
        assert load_checkpoint(out / "checkpoint.zip").epoch == 1
        assert "the previous checkpoint.zip is unchanged" in message
        assert f"continue from it with: gluon-modern-cnn train --resume {out}" in message
        assert not list(out.glob(".*.tmp"))  # no half-written file left taking space


@needs_root
def test_a_read_only_folder_is_one_message(tmp_path, tiny_run, fashion_mnist_root, capsys):
    (tmp_path / "source").mkdir()
    with _mounted(["--bind", str(tmp_path / "source")], tmp_path / "ro") as ro:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], check=True)
        assert cli.main([*TRAIN, "--out", str(ro / "run"), "--data-root",
                         str(fashion_mnist_root)]) == 2
        message = _error(capsys)
        assert "Read-only file system" in message and str(ro / "run") in message
        assert cli.main(["export", "lenet_bn", "--params", str(tiny_run / "model.params"),
                         "--format", "mxnet", "--out", str(ro / "net")]) == 2
        message = _error(capsys)
        assert "Read-only file system" in message and str(ro) in message
        with pytest.raises(OutputError, match="Read-only file system; write to a folder on a "
                                              "writable file system"):
            atomic_write(ro / "x.json", lambda tmp: Path(tmp).write_text("{}"))


def test_folders_and_files_in_the_wrong_place_are_one_message(tmp_path, tiny_run, capsys,
                                                              fashion_mnist_root):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    # Refused while parsing the arguments: argparse's own one-line message and exit status 2.
    with pytest.raises(SystemExit) as stop:
        cli.main([*TRAIN, "--out", str(tmp_path / "run"), "--data-root", str(not_a_folder)])
    assert stop.value.code == 2
    assert f"argument --data-root: {not_a_folder} is a file, not a folder" in _error(capsys)
    assert not (tmp_path / "run").exists()
    data = tmp_path / "data"
    (data / "train-images-idx3-ubyte.gz").mkdir(parents=True)   # the other three are files
    for name in ("train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        (data / name).symlink_to(fashion_mnist_root / name)
    assert cli.main([*TRAIN, "--out", str(tmp_path / "run"), "--data-root", str(data)]) == 2
    assert "train-images-idx3-ubyte" in _error(capsys)
    assert cli.main(["evaluate", "lenet_bn", "--params", str(tiny_run), "--device", "cpu"]) == 2
    assert "is a folder; give the parameter file in it" in _error(capsys)
    run_dir = tmp_path / "resumable"
    (run_dir / "checkpoint.zip").mkdir(parents=True)
    assert cli.main(["train", "lenet_bn", "--resume", str(run_dir)]) == 2
    assert "is a folder, not a checkpoint file" in _error(capsys)


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0"])
def test_a_learning_rate_that_is_no_positive_number_writes_nothing(tmp_path, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([*TRAIN, "--lr", value, "--out", str(tmp_path / "run")])
    assert exit_.value.code == 2
    assert "expected a positive finite number" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_an_impossible_size_is_refused_before_allocating(tmp_path, capsys):
    started = time.monotonic()
    assert cli.main(["train", "resnet18", "--resize", "100000", "--out",
                     str(tmp_path / "run")]) == 2
    assert "GiB for one input batch alone" in _error(capsys)
    assert time.monotonic() - started < 10 and not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------
# Priority 4: SIGTERM is Ctrl-C
# ---------------------------------------------------------------------------------------------

def test_sigterm_keeps_the_checkpoint_and_the_resumed_run_is_identical(tmp_path,
                                                                       fashion_mnist_root):
    args = ["train", "lenet_bn", "--epochs", "3", "--batch-size", "100", "--subset", "2000",
            "--device", "cpu", "--data-root", fashion_mnist_root]
    reference = start(*args, "--out", tmp_path / "reference", cwd=tmp_path)
    run_dir = tmp_path / "run"
    stopped = start(*args, "--out", run_dir, cwd=tmp_path)
    seen = ""
    while "epoch 2/3" not in seen:
        chunk = os.read(stopped.stderr.fileno(), 1 << 16).decode()
        assert chunk, seen
        seen += chunk
    stopped.send_signal(signal.SIGTERM)
    result = finish(stopped)
    assert result.returncode == 143, result.stderr
    assert "Interrupted (SIGTERM): stopping after this batch" in result.stdout
    assert f"Continue with: gluon-modern-cnn train --resume {run_dir}" in result.stderr
    assert load_checkpoint(run_dir / "checkpoint.zip").epoch in (1, 2)
    run("train", "lenet_bn", "--resume", run_dir, cwd=tmp_path).check()
    finish(reference).check()
    assert ((run_dir / "model.params").read_bytes()
            == (tmp_path / "reference" / "model.params").read_bytes())


def test_sigterm_outside_training_is_a_message_and_status_143(monkeypatch, capsys):
    def terminated(args):
        os.kill(os.getpid(), signal.SIGTERM)  # e.g. while the data loads
        time.sleep(5)
        return 0
    monkeypatch.setattr(cli, "_run_devices", terminated)
    assert cli.main(["devices"]) == 143
    assert capsys.readouterr().err == "gluon-modern-cnn devices: interrupted\n"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


# ---------------------------------------------------------------------------------------------
# Priority 5: the launcher leaves nothing behind and notices a stopped worker
# ---------------------------------------------------------------------------------------------

# Workers write their pid and keep a little busy; the scheduler and servers wait.
BUSY = """
import os, sys, time
if os.environ["DMLC_ROLE"] == "worker":
    path = os.path.join(os.environ["FAKE_DIR"], f"worker{os.getpid()}")
    with open(path, "w") as f:
        f.write(str(os.getpid()))
    while True:
        sum(range(100000))
        time.sleep(0.02)
time.sleep(60)
"""


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its exit status is left to collect


def test_sigkill_of_the_launcher_leaves_no_process(tmp_path):
    with no_process_left() as token:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "gluon_modern_cnn.distributed", "-n", "2",
             "--env", f"{TAG}={token}", "--env", f"FAKE_DIR={tmp_path}",
             "--", sys.executable, "-c", BUSY],
            env={**os.environ, TAG: token}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            children = []
            while len(children) < 4 and time.monotonic() < deadline:
                time.sleep(0.1)
                children = [pid for pid in tagged_processes(token) if _parent(pid) == launcher.pid]
            assert len(children) == 4  # scheduler, server, 2 workers
            launcher.send_signal(signal.SIGKILL)
            launcher.wait()
            deadline = time.monotonic() + 10
            while any(map(_alive, children)) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert [pid for pid in children if _alive(pid)] == []
        finally:
            if launcher.poll() is None:
                launcher.kill()
                launcher.wait()


def test_a_stopped_worker_is_named_within_the_stall_timeout(tmp_path):
    assert distributed.DEFAULT_STALL_TIMEOUT is not None  # on by default

    def stop_a_worker():
        deadline = time.monotonic() + 30
        while not list(tmp_path.glob("worker*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        stopped.append(int(sorted(tmp_path.glob("worker*"))[0].read_text()))
        os.kill(stopped[0], signal.SIGSTOP)

    stopped = []
    with no_process_left() as token:
        plan = distributed.plan_cluster([sys.executable, "-c", BUSY], num_workers=2,
                                        num_servers=1, env={TAG: token,
                                                            "FAKE_DIR": str(tmp_path)})
        thread = threading.Thread(target=stop_a_worker)
        thread.start()
        started = time.monotonic()
        with pytest.raises(distributed.ClusterError) as failure:
            distributed.launch(plan, grace=1, stall_timeout=2, timeout=60,
                               stdout=io.StringIO(), stderr=io.StringIO())
        seconds = time.monotonic() - started
        thread.join()
    assert f"pid {stopped[0]}" in str(failure.value)
    assert "has been stopped (SIGSTOP" in str(failure.value)
    assert seconds < 20
