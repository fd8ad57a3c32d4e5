"""Checkpoints: written atomically, read back with clear errors, and a training run killed at any
moment resumes to exactly the parameters of an uninterrupted run.

The kill tests train a tiny registered model holding every kind of state a resumed run must
restore or reproduce: ``nn.BatchNorm`` running statistics (Parameters), the book's scratch
``BatchNorm`` moving statistics (plain arrays), and ``Dropout``, whose masks come from MXNet's
random generator. None of the chapter's models has both batch normalization and dropout, and the
smallest ones with either take many times longer per epoch; this one trains 3 epochs on 2000 real
images in about a second each.
"""
from __future__ import annotations

import json
import os
import re
import signal
import stat
import sys
import zipfile
from pathlib import Path

import mxnet as mx
import numpy
import pytest
from mxnet import autograd, gluon

from gluon_modern_cnn import cli
from gluon_modern_cnn.training.checkpoint import (FAULT_ENV_VAR, CheckpointError,
                                                  _trainer_order, atomic_write, load_checkpoint,
                                                  load_parameters, network_state,
                                                  remove_stale_temporaries, save_checkpoint,
                                                  save_parameters)
from gluon_modern_cnn.training.experiment import OUTPUT_FILES, prepare_output, resolve_settings
from gluon_modern_cnn.registry import get_model
from gluon_modern_cnn.training import History
from test_cli import finish, run, start  # the command-line runners

TINY_MODEL = '''
import gluon_modern_cnn as gmc  # first: it makes mxnet importable with numpy >= 1.24
from gluon_modern_cnn.registry import register_model
from mxnet.gluon import nn

@register_model("tiny_dropout_bn", family="test", section="test", input_size=28)
def tiny_dropout_bn(num_classes=10):
    """Convolutions with nn.BatchNorm and the scratch BatchNorm, then Dropout."""
    net = nn.Sequential()
    net.add(nn.Conv2D(8, kernel_size=3, strides=2, padding=1), nn.BatchNorm(),
            nn.Activation("relu"),
            nn.Conv2D(16, kernel_size=3, strides=2, padding=1), gmc.BatchNorm(16, num_dims=4),
            nn.Activation("relu"),
            nn.Dense(32, activation="relu"), nn.Dropout(0.5), nn.Dense(num_classes))
    return net
'''
#: The package's command line with the tiny model registered: ``python -c ... train ...``.
TINY_CLI = (sys.executable, "-c", TINY_MODEL + "import sys\nfrom gluon_modern_cnn.cli import "
                                                  "main\nsys.exit(main(sys.argv[1:]))\n")


def _tiny_args(data_root) -> list:
    return ["train", "tiny_dropout_bn", "--lr", 0.1, "--epochs", 3, "--batch-size", 100,
            "--subset", 2000, "--device", "cpu", "--data-root", data_root]


def _kill_when(process, marker: bytes) -> bytes:
    """SIGKILL ``process`` as soon as ``marker`` appears on its stderr; returns that stderr."""
    seen = b""
    while marker not in seen:
        chunk = os.read(process.stderr.fileno(), 1 << 16)
        if not chunk:
            break
        seen += chunk
    process.send_signal(signal.SIGKILL)
    finish(process)
    return seen


def _arrays(path) -> dict:
    return {name: array.asnumpy() for name, array in mx.npx.load(str(path)).items()}


def test_killed_runs_resume_to_the_uninterrupted_result(tmp_path, fashion_mnist_root):
    args = _tiny_args(fashion_mnist_root)
    reference = start(*args, "--out", tmp_path / "reference", command=TINY_CLI, cwd=tmp_path)
    run_dir = tmp_path / "run"
    checkpoint_file = run_dir / OUTPUT_FILES["checkpoint"]

    # 1. SIGKILL once the second epoch has started (its progress bar appeared on stderr).
    killed = start(*args, "--out", run_dir, command=TINY_CLI, cwd=tmp_path)
    assert b"epoch 2/3" in _kill_when(killed, b"epoch 2/3")
    assert killed.returncode == -signal.SIGKILL
    assert not (run_dir / "model.params").exists()  # written when a run ends: it did not
    first = load_checkpoint(checkpoint_file)
    # Epoch 1's checkpoint, or epoch 2's if that epoch ended before the signal arrived.
    assert first.model == "tiny_dropout_bn" and first.epoch in (1, 2)
    assert len(first.history.epochs) == first.epoch
    assert {"1.running_mean", "4.moving_mean", "4.moving_var"} <= set(first.parameters())

    # 2. Resume; the fault-injection hook kills it between writing the next checkpoint to its
    # temporary file and renaming it.
    later = first.epoch + 1
    result = run("train", "tiny_dropout_bn", "--resume", run_dir, command=TINY_CLI, cwd=tmp_path,
                 env={FAULT_ENV_VAR: f"kill-before-rename:{later}"})
    assert result.returncode == -signal.SIGKILL, result.stderr
    (temporary,) = run_dir.glob(f".{checkpoint_file.name}.*.tmp")
    assert load_checkpoint(temporary).epoch == later  # complete, but never renamed ...
    assert load_checkpoint(checkpoint_file).epoch == first.epoch  # ... so the last one is intact

    # 3. Resume again, with the run's own settings and devices: it finishes.
    resumed = run("train", "tiny_dropout_bn", "--resume", run_dir, command=TINY_CLI,
                  cwd=tmp_path).check()
    # The killed run's claim on the folder is taken over, with a note.
    assert resumed.stderr.startswith(f"note: taking over {run_dir} from process ")
    assert resumed.stderr.split("\n", 1)[1].startswith(
        f"resuming tiny_dropout_bn after epoch {first.epoch} of 3, lr 0.1, batch 100, resize -, "
        f"seed 0, first 2000 images, on cpu(0); outputs in {run_dir}\n")
    assert not temporary.exists()
    reference = finish(reference).check()
    assert resumed.lines[-2] == reference.lines[-2]  # the book's result line

    # Exactly the uninterrupted run's final state, running and moving statistics included.
    expected, actual = _arrays(tmp_path / "reference" / "model.params"), _arrays(
        run_dir / "model.params")
    assert sorted(actual) == sorted(expected)
    for name in expected:
        numpy.testing.assert_array_equal(actual[name], expected[name], err_msg=name)
    assert not numpy.array_equal(expected["4.moving_var"], numpy.zeros_like(
        expected["4.moving_var"]))

    def results(history_file):
        epochs = json.loads(history_file.read_text())["epochs"]
        return [(e["epoch"], e["train_loss"], e["train_acc"], e["test_acc"]) for e in epochs]
    assert results(run_dir / "history.json") == results(tmp_path / "reference" / "history.json")
    # The checkpoints carry the curve's points: the resumed run draws the same curves, point for
    # point, and the same picture (the resumed figure is drawn in another order, line by line, so
    # a few anti-aliased edge pixels may differ by a shade; no curve moves).
    def curve(checkpoint):
        return load_checkpoint(checkpoint).extra["curve"]
    assert curve(checkpoint_file) == curve(tmp_path / "reference" / OUTPUT_FILES["checkpoint"])
    from PIL import Image
    resumed_png, reference_png = (numpy.asarray(Image.open(path)).astype(int) for path in (
        run_dir / "curve.png", tmp_path / "reference" / "curve.png"))
    assert resumed_png.shape == reference_png.shape
    shade = numpy.abs(resumed_png - reference_png).max(axis=-1)
    assert shade.max() <= 32 and (shade > 0).mean() < 0.002, (shade.max(), (shade > 0).mean())
    assert load_checkpoint(checkpoint_file).epoch == 3


# ---------------------------------------------------------------------------------------------
# Writing files atomically
# ---------------------------------------------------------------------------------------------

def test_atomic_write_keeps_the_old_file_when_a_write_fails(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("complete old content")

    def half_written(tmp):
        Path(tmp).write_text("partial")
        raise OSError("disk full")
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half_written)

    def interrupted(tmp):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, lambda tmp: Path(tmp).write_text("new"), before_replace=interrupted)
    assert target.read_text() == "complete old content"
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind


def test_atomic_write_replaces_with_the_permissions_of_a_new_file(tmp_path):
    target = atomic_write(tmp_path / "file.txt", lambda tmp: Path(tmp).write_text("new"))
    assert target.read_text() == "new"
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_stale_temporaries_of_a_killed_writer_are_removed(tmp_path):
    target = tmp_path / "checkpoint.zip"
    stale = [tmp_path / ".checkpoint.zip.abc123.tmp", tmp_path / ".checkpoint.zip.x.tmp"]
    others = [tmp_path / ".model.params.abc.tmp", tmp_path / "checkpoint.zip.tmp", target]
    for path in stale + others:
        path.write_text("x")
    assert remove_stale_temporaries(target) == sorted(stale)
    assert sorted(tmp_path.iterdir()) == sorted(others)


# ---------------------------------------------------------------------------------------------
# Parameters and checkpoints in-process
# ---------------------------------------------------------------------------------------------

def _scratch_lenet(dense_layers_before: int = 0):
    """The scratch batch-norm LeNet built in a fresh name scope, as train_model builds it, after
    ``dense_layers_before`` other dense layers (which shifts its layer names)."""
    with mx.name.NameManager():
        for _ in range(dense_layers_before):
            gluon.nn.Dense(1)
        return get_model("lenet_bn_scratch")


def _trainer(net) -> gluon.Trainer:
    return gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1, "momentum": 0.9})


def _trained_scratch_lenet(seed: int = 0):
    """The scratch batch-norm LeNet after two SGD-with-momentum steps, and its trainer."""
    mx.random.seed(seed)
    net = _scratch_lenet()
    net.initialize(mx.init.Xavier())
    trainer = _trainer(net)
    for step in range(2):
        _step(net, trainer, step)
    return net, trainer


def _step(net, trainer, step: int) -> None:
    rng = numpy.random.RandomState(step)
    X = mx.np.array(rng.uniform(size=(8, 1, 28, 28)).astype("float32"))
    y = mx.np.array(rng.randint(0, 10, size=8))
    with autograd.record():
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(net(X), y)
    loss.backward()
    trainer.step(8)


def _state(net) -> dict:
    return {name: array.asnumpy() for name, array in network_state(net).items()}


def _saved_checkpoint(path: Path, **fields):
    """The scratch LeNet after two steps and its trainer, saved to ``path`` as epoch 1 of a
    lenet_bn_scratch run on cpu0 (``fields``: other settings, history or extra); returns the
    network, the trainer and the checkpoint's path."""
    net, trainer = _trained_scratch_lenet()
    fields = {"settings": {}, "history": History(), **fields}
    return net, trainer, save_checkpoint(path, net=net, trainer=trainer, model="lenet_bn_scratch",
                                         epoch=1, devices=["cpu0"], **fields)


@pytest.fixture
def checkpoint_dir(tmp_path):
    """A run folder of lenet_bn_scratch with a checkpoint after 1 of 2 epochs."""
    settings = resolve_settings("lenet_bn_scratch", num_epochs=2, seed=0, subset=100)
    run_dir = tmp_path / "run"
    _saved_checkpoint(run_dir / OUTPUT_FILES["checkpoint"], settings=settings.to_dict())
    return run_dir


def test_parameter_files_carry_the_scratch_batch_norm_statistics(tmp_path):
    net, _ = _trained_scratch_lenet()
    save_parameters(net, tmp_path / "model.params")
    fresh = get_model("lenet_bn_scratch")
    load_parameters(fresh, tmp_path / "model.params")
    for name, array in _state(net).items():
        numpy.testing.assert_array_equal(_state(fresh)[name], array, err_msg=name)
    assert _state(net)["1.moving_var"].any()  # trained statistics, not the zeros of a new layer
    with pytest.raises(CheckpointError, match=r"model\.params does not fit this model \(missing "
                                              r".*; not in the model: .*moving_mean.*; is it a "
                                              r"file of another model"):
        load_parameters(get_model("lenet_bn_hybrid"), tmp_path / "model.params")


def test_a_checkpoint_restores_parameters_statistics_and_optimizer_state(tmp_path):
    history = History.from_dict({"epochs": [{"epoch": 1, "train_loss": 0.5, "train_acc": 0.8,
                                             "test_acc": 0.7, "examples": 16, "step_seconds": 1.0,
                                             "wall_seconds": 2.0}]})
    net, trainer, path = _saved_checkpoint(tmp_path / "checkpoint.zip", settings={"lr": 0.1},
                                           history=history, extra={"curve": {"X": [[1.0]]}})
    checkpoint = load_checkpoint(path)
    assert (checkpoint.model, checkpoint.epoch, checkpoint.settings, checkpoint.devices) == (
        "lenet_bn_scratch", 1, {"lr": 0.1}, ("cpu0",))
    assert checkpoint.history.epochs == history.epochs
    assert checkpoint.extra == {"curve": {"X": [[1.0]]}}

    restored = _scratch_lenet()
    checkpoint.load_parameters(restored, ctx=[mx.cpu()])
    restored_trainer = _trainer(restored)
    checkpoint.load_trainer_states(restored_trainer, net=restored)
    # Momentum included: the next step moves both networks identically.
    _step(net, trainer, 2)
    _step(restored, restored_trainer, 2)
    for name, array in _state(net).items():
        numpy.testing.assert_array_equal(_state(restored)[name], array, err_msg=name)


def test_optimizer_state_follows_its_parameter_into_another_trainer_order(tmp_path):
    net, trainer, path = _saved_checkpoint(tmp_path / "checkpoint.zip")
    # Names dense8, dense9, dense10 sort as dense10, dense8, dense9: another order in the Trainer.
    restored = _scratch_lenet(dense_layers_before=8)
    checkpoint = load_checkpoint(path)
    checkpoint.load_parameters(restored, ctx=[mx.cpu()])
    restored_trainer = _trainer(restored)
    assert _trainer_order(restored_trainer, restored) != list(checkpoint.trainer_order)
    checkpoint.load_trainer_states(restored_trainer, net=restored)
    # Momentum included: the next steps move both networks identically.
    for step in (2, 3):
        _step(net, trainer, step)
        _step(restored, restored_trainer, step)
    for name, array in _state(net).items():
        numpy.testing.assert_array_equal(_state(restored)[name], array, err_msg=name)


def test_optimizer_state_for_other_parameters_is_refused(tmp_path):
    _, _, path = _saved_checkpoint(tmp_path / "checkpoint.zip")
    restored = _scratch_lenet()
    load_checkpoint(path).load_parameters(restored, ctx=[mx.cpu()])
    partial = gluon.Trainer({k: v for k, v in restored.collect_params().items()
                             if "gamma" not in k}, "sgd", {"learning_rate": 0.1})
    with pytest.raises(CheckpointError, match=r"the trainer's parameters are not those of "
                                              r"lenet_bn_scratch's checkpoint .*build the trainer "
                                              r"over the whole network's parameters"):
        load_checkpoint(path).load_trainer_states(partial, net=restored)


def _rewrite(path: Path, **members) -> None:
    """Rewrite the archive at ``path`` with some members replaced (None: left out)."""
    with zipfile.ZipFile(path) as archive:
        content = {name: archive.read(name) for name in archive.namelist()}
    content.update(members)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in content.items():
            if data is not None:
                archive.writestr(name, data)


def _manifest(path: Path, **changes) -> bytes:
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("checkpoint.json"))
    return json.dumps({**manifest, **changes}).encode()


def _flip_byte(path: Path, offset: int = 5000) -> None:
    """Corrupt one byte inside the archive's first member (the parameters)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, message", [
    pytest.param(lambda p: p.write_bytes(p.read_bytes()[:len(p.read_bytes()) // 2]),
                 r"is damaged \(File is not a zip file\)", id="truncated"),
    pytest.param(_flip_byte, r"is damaged \(Bad CRC-32 for file 'model\.params'\)",
                 id="flipped-byte"),
    pytest.param(lambda p: p.write_text("a user's notes"), r"is damaged \(File is not a zip file\)",
                 id="not-a-zip"),
    pytest.param(lambda p: _rewrite(p, **{"trainer.states": None}),
                 r"is damaged \(it lacks trainer\.states\)", id="member-missing"),
    pytest.param(lambda p: _rewrite(p, **{"checkpoint.json": b"{"}),
                 r"is damaged \(its checkpoint\.json is not JSON", id="manifest-not-json"),
    pytest.param(lambda p: _rewrite(p, **{"checkpoint.json": _manifest(p, format="other")}),
                 r"is not a gluon-modern-cnn training checkpoint", id="other-format"),
    pytest.param(lambda p: _rewrite(p, **{"checkpoint.json": _manifest(p, version=2)}),
                 r"is a checkpoint of format version 2; this version of gluon-modern-cnn reads "
                 r"version 1", id="newer-version"),
    pytest.param(lambda p: _rewrite(p, **{"checkpoint.json": _manifest(p, epoch="one")}),
                 r"its checkpoint\.json lacks or garbles", id="garbled-manifest"),
])
def test_a_damaged_checkpoint_is_refused_clearly(checkpoint_dir, damage, message, capsys):
    path = checkpoint_dir / OUTPUT_FILES["checkpoint"]
    damage(path)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)
    before = path.read_bytes()
    assert cli.main(["train", "lenet_bn_scratch", "--resume", str(checkpoint_dir)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert re.search(message, err), err
    assert path.read_bytes() == before  # never replaced


@pytest.mark.parametrize("argv, message", [
    (["train", "lenet_bn", "--resume", "{run}"], r"checkpoint in {run} is for lenet_bn_scratch, "
                                                 r"not lenet_bn$"),
    (["train", "lenet_bn_scratch", "--resume", "{run}", "--lr", "0.5", "--seed", "1"],
     r"cannot resume the run in {run} with other settings: lr=0\.5 \(the run has 1\.0\), seed=1 "
     r"\(the run has 0\)\. A resumed run repeats its run's settings"),
    (["train", "lenet_bn_scratch", "--resume", "{run}", "--epochs", "1"],
     r"the run in {run} has finished 1 of its 2 epochs; to train it further, ask for more than 1 "
     r"epochs"),
    (["train", "lenet_bn_scratch", "--resume", "{run}", "--device", "cpu0,cpu1"],
     r"the run in {run} trained on 1 device\(s\) \(cpu0\); continue it on as many"),
    (["train", "lenet_bn_scratch", "--resume", "{run}", "--out", "elsewhere"],
     r"--resume DIR continues the run in DIR and writes there; leave out --out"),
    (["train", "lenet_bn_scratch", "--out", "{run}"],
     r"{run} already holds a training run \(checkpoint\.zip\); continue it with --resume {run}, "
     r"replace it with --overwrite"),
], ids=["other-model", "other-settings", "finished", "fewer-devices", "other-out",
        "new-run-over-it"])
def test_resuming_refuses_what_would_not_continue_the_run(checkpoint_dir, argv, message, capsys):
    run_dir = str(checkpoint_dir)
    before = {p.name: p.read_bytes() for p in checkpoint_dir.iterdir()}
    assert cli.main([arg.format(run=run_dir) for arg in argv]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(message.format(run=re.escape(run_dir)), err.strip()), err
    assert {p.name: p.read_bytes() for p in checkpoint_dir.iterdir()} == before


def test_a_run_without_a_checkpoint_cannot_resume(tmp_path, capsys):
    (tmp_path / "settings.json").write_text("{}")  # killed during its first epoch
    assert cli.main(["train", "lenet_bn", "--resume", str(tmp_path)]) == 2
    assert re.search(r"holds no checkpoint \(checkpoint\.zip\); a run writes one at the end of "
                     r"every epoch.*the same command without --resume", capsys.readouterr().err)


def test_overwrite_replaces_only_the_runs_own_files(tmp_path):
    for name in OUTPUT_FILES.values():
        (tmp_path / name).write_text("old run")
    (tmp_path / "notes.txt").write_text("the user's")
    with pytest.raises(FileExistsError, match="already holds a training run"):
        prepare_output(tmp_path)
    assert (tmp_path / "model.params").read_text() == "old run"
    prepare_output(tmp_path, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert prepare_output(tmp_path / "new") == tmp_path / "new"  # a new folder is fine
