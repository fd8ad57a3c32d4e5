"""The command line as users run it: every subcommand in a subprocess with its output checked, and
every wrong argument answered with a one-line message and exit status 2, never a traceback.

Subprocesses cost seconds each on a small machine (importing MXNet), so commands that do not
depend on each other run concurrently: ``list``, ``devices``, ``summary``, ``crosscheck`` and the
README's main job start with the module; ``evaluate``, ``predict`` and ``export`` start together
once ``train`` has written its parameters. Error cases call :func:`cli.main` in-process, which is
what the console script runs.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence

import mxnet as mx
import numpy
import pytest
from PIL import Image

import gluon_modern_cnn  # noqa: F401  (numpy aliases, set_np)
from gluon_modern_cnn import book, cli
from gluon_modern_cnn.training.checkpoint import load_checkpoint, load_parameters
from gluon_modern_cnn.data import load_fashion_mnist_arrays
from gluon_modern_cnn.runtime.devices import describe_devices
from gluon_modern_cnn.training.experiment import OUTPUT_FILES, fashion_mnist_loader
from gluon_modern_cnn.training.inference import load_trained
from gluon_modern_cnn.tools.flops import count_flops, count_parameters
from gluon_modern_cnn.registry import get_model

REPO = Path(__file__).resolve().parents[1]
#: ``python -m gluon_modern_cnn`` with this interpreter; the console script sits beside it.
MODULE = (sys.executable, "-m", "gluon_modern_cnn")
SCRIPT = (str(Path(sys.executable).parent / "gluon-modern-cnn"),)
ANKLE_BOOT = 9  # the label of the first test image
# Tests never download: a proxy on a closed port makes every download fail at once.
_NO_NETWORK = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}


# ---------------------------------------------------------------------------------------------
# Running the command line
# ---------------------------------------------------------------------------------------------

@dataclass
class Finished:
    """A finished command: its arguments, exit status and output."""

    args: List[str]
    returncode: int
    stdout: str
    stderr: str

    def check(self, returncode: int = 0) -> "Finished":
        assert self.returncode == returncode, (
            f"{' '.join(self.args)} exited {self.returncode}:\n{self.stdout}\n{self.stderr}")
        assert "Traceback" not in self.stderr, self.stderr
        return self

    @property
    def lines(self) -> List[str]:
        return self.stdout.splitlines()


def cli_env(extra: Dict[str, str] = None) -> Dict[str, str]:
    """The environment of a command: this checkout first on the path, no network."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **_NO_NETWORK, **(extra or {})}


def start(*args, command: Sequence[str] = MODULE, cwd: Path,
          env: Dict[str, str] = None) -> subprocess.Popen:
    """Start ``command args...`` (default ``python -m gluon_modern_cnn``) in ``cwd``."""
    argv = [*command, *map(str, args)]
    return subprocess.Popen(argv, cwd=cwd, env=cli_env(env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, timeout: float = 600) -> Finished:
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return Finished(list(process.args), process.returncode, stdout, stderr)


def run(*args, **kwargs) -> Finished:
    return finish(start(*args, **kwargs))


class Concurrent:
    """Commands started together and collected by name."""

    def __init__(self):
        self.running: Dict[str, subprocess.Popen] = {}
        self.done: Dict[str, Finished] = {}

    def start(self, name: str, *args, **kwargs) -> None:
        self.running[name] = start(*args, **kwargs)

    def __getitem__(self, name: str) -> Finished:
        if name not in self.done:
            self.done[name] = finish(self.running.pop(name))
        return self.done[name]

    def stop(self) -> None:
        for process in self.running.values():
            process.kill()
            process.communicate()


# ---------------------------------------------------------------------------------------------
# The subcommands, as users run them
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def independent(tmp_path_factory, fashion_mnist_root):
    """Commands that need nothing else, started as the module starts."""
    work = tmp_path_factory.mktemp("independent")
    commands = Concurrent()
    commands.start("list", "list", command=SCRIPT, cwd=work)
    commands.start("devices", "devices", cwd=work)
    commands.start("summary", "summary", "alexnet", cwd=work)
    commands.start("crosscheck", "crosscheck", "--section", "7.1", cwd=work)
    # The README's main job, shortened to one epoch of one model.
    commands.start("reproduce", "reproduce", "7.5", "--epochs", "1", "--model", "lenet_bn",
                   "--device", "cpu", "--data-root", fashion_mnist_root, "--out", work / "repro",
                   command=SCRIPT, cwd=work)
    commands.work = work
    yield commands
    commands.stop()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, fashion_mnist_root):
    """One short epoch of section 7.5's batch-norm LeNet on 20000 real images (the console
    script, as a user runs it). Batch size 64 and lr 0.5 give it about 70% test accuracy."""
    work = tmp_path_factory.mktemp("train")
    result = run("train", "lenet_bn_hybrid", "--hybridize", "--epochs", "1", "--subset", 20000,
                 "--batch-size", 64, "--lr", 0.5, "--device", "cpu",
                 "--data-root", fashion_mnist_root, "--out", work / "run", command=SCRIPT,
                 cwd=work)
    return work / "run", result.check()


@pytest.fixture(scope="module")
def boot_images(trained, fashion_mnist_root):
    """The first test image, an ankle boot, as a PNG, a float .npy and an enlarged RGB JPEG."""
    folder = trained[0].parent
    images, labels = load_fashion_mnist_arrays(False, root=fashion_mnist_root)
    assert labels[0] == ANKLE_BOOT
    Image.fromarray(images[0]).save(folder / "boot.png")
    numpy.save(folder / "boot.npy", images[0].astype(numpy.float32) / 255)
    Image.fromarray(images[0]).convert("RGB").resize((56, 56), Image.BILINEAR).save(
        folder / "boot.jpg", quality=95)
    return [folder / name for name in ("boot.png", "boot.npy", "boot.jpg")]


@pytest.fixture(scope="module")
def using_parameters(trained, boot_images, fashion_mnist_root):
    """evaluate, predict and export of the trained parameters, started together."""
    run_dir, _ = trained
    params, work = run_dir / "model.params", run_dir.parent
    commands = Concurrent()
    commands.start("evaluate", "evaluate", "lenet_bn_hybrid", "--params", params, "--device",
                   "cpu", "--data-root", fashion_mnist_root, cwd=work)
    # The book's nn.Block version: the same parameters load into both.
    commands.start("predict", "predict", "lenet_bn", "--params", params, *boot_images,
                   "--device", "cpu", cwd=work)
    commands.start("export-mxnet", "export", "lenet_bn", "--params", params, "--format", "mxnet",
                   "--out", work / "exported" / "lenet", cwd=work)
    if _onnx_available():
        commands.start("export-onnx", "export", "lenet_bn_hybrid", "--params", params,
                       "--format", "onnx", "--dynamic-batch", "--out", work / "lenet", cwd=work)
    yield commands
    commands.stop()


def _onnx_available() -> bool:
    """onnxruntime 1.16.3 (the onnx extra) needs numpy >= 1.24.2; the CI environment with the
    oldest supported numpy (1.23.5) cannot install it. Everywhere else it must be there."""
    return numpy.lib.NumpyVersion(numpy.__version__) >= "1.24.2"


def test_list_shows_every_model_with_its_book_settings(independent):
    lines = independent["list"].check().lines
    assert lines[0].split() == ["model", "section", "input", "classes", "lr", "epochs", "batch",
                                "resize"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows["lenet_bn"] == ["7.5", "1x28x28", "10", "1.0", "10", "256", "-"]
    assert rows["resnet18"] == ["7.6", "1x96x96", "10", "0.05", "10", "256", "96"]
    assert set(rows) == set(gluon_modern_cnn.list_models())


def test_devices_reports_what_describe_devices_says(independent):
    assert independent["devices"].check().stdout.strip() == describe_devices().strip()


def test_summary_of_alexnet_is_the_books_trace_with_costs(independent):
    lines = independent["summary"].check().lines
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines if " output shape: " in line]
    assert [row[0] for row in rows] == list(book.section("7.1").outputs[0].lines)
    parameters = [int(row[1].replace(",", "")) for row in rows]
    flops = [int(row[2].replace(",", "")) for row in rows]
    assert parameters[0] == 96 * 11 * 11 + 96  # conv0: weights and biases
    assert parameters[9] == flops[9] == 0  # dropout0
    total = next(re.split(r"\s{2,}", line.strip()) for line in lines if line.startswith("total"))
    net = get_model("alexnet")
    assert int(total[2].replace(",", "")) == sum(flops) == count_flops(net, (1, 1, 224, 224))
    assert int(total[1].replace(",", "")) == sum(parameters) == count_parameters(net)
    assert lines[-1].startswith("input (1, 1, 224, 224): 46,764,746 trainable parameters, "
                                "1.88 GFLOPs per example")


def test_crosscheck_runs_under_the_same_entry_point(independent):
    out = independent["crosscheck"].check().stdout
    assert "7.1 Deep Convolutional Neural Networks (AlexNet): MATCH" in out
    assert out.strip().endswith("1 of 1 sections match the book")


def test_the_readme_main_job_reproduces_section_7_5(independent):
    result = independent["reproduce"].check()
    out = result.lines
    assert out[0] == ("== section 7.5: lenet_bn, lr 1.0, 1 epoch, batch 256, resize None")
    assert book.RESULT_PATTERN.match(out[1]) and book.SPEED_PATTERN.match(out[2]), out
    folder = independent.work / "repro"
    assert out[3] == f"results written to {folder}/results.md"
    record = json.loads((folder / "results.json").read_text())
    (lenet,) = record["results"]
    assert lenet["model"] == "lenet_bn" and lenet["package"]["epoch"] == 1
    assert lenet["package"]["test_acc"] > 0.6  # a full epoch of the book's settings
    assert out[1] == (f"loss {lenet['package']['loss']:.3f}, train acc "
                      f"{lenet['package']['train_acc']:.3f}, test acc "
                      f"{lenet['package']['test_acc']:.3f}")
    report = (folder / "results.md").read_text()
    assert report.startswith("# Section 7.5: Batch Normalization") and "## lenet_bn" in report
    assert (folder / "lenet_bn" / OUTPUT_FILES["checkpoint"]).is_file()


def test_train_prints_the_books_lines_and_writes_every_output(trained):
    run_dir, result = trained
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(OUTPUT_FILES.values())
    history = json.loads((run_dir / "history.json").read_text())
    (epoch,) = history["epochs"]
    assert epoch["examples"] == 20000 and not history["interrupted"]
    # The book's two result lines end stdout, with the numbers of the history.
    assert result.lines[-2] == (f"loss {epoch['train_loss']:.3f}, train acc "
                                f"{epoch['train_acc']:.3f}, test acc {epoch['test_acc']:.3f}")
    assert book.SPEED_PATTERN.match(result.lines[-1]).group("device") == "cpu(0)"
    assert epoch["test_acc"] > 0.6
    assert result.stderr.startswith(f"training lenet_bn_hybrid: 1 epoch, lr 0.5, batch 64, "
                                    f"resize -, seed 0, first 20000 images, on cpu(0); outputs "
                                    f"in {run_dir}\n")
    # stderr is a pipe here, not a terminal: one line per epoch, no progress bar's carriage returns.
    assert "\r" not in result.stderr
    assert re.search(rf"^epoch 1/1: loss {epoch['train_loss']:.3f}, train acc "
                     rf"{epoch['train_acc']:.3f}, test acc {epoch['test_acc']:.3f}, \d+\.\d s$",
                     result.stderr, re.MULTILINE), result.stderr
    settings = json.loads((run_dir / "settings.json").read_text())
    assert settings == {"settings": {"model": "lenet_bn_hybrid", "lr": 0.5, "num_epochs": 1,
                                     "batch_size": 64, "resize": None, "hybridize": True,
                                     "fast_data": True, "seed": 0, "subset": 20000,
                                     "dtype": "float32"},
                        "devices": ["cpu(0)"], "images": {"train": 20000, "test": 10000}}
    assert (run_dir / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    net = get_model("lenet_bn_hybrid")
    load_parameters(net, run_dir / "model.params")  # every parameter and statistic present
    checkpoint = load_checkpoint(run_dir / "checkpoint.zip")
    assert (checkpoint.model, checkpoint.epoch) == ("lenet_bn_hybrid", 1)
    assert checkpoint.history.final.test_acc == epoch["test_acc"]


def test_evaluate_prints_the_test_accuracy_training_measured(trained, using_parameters):
    history = json.loads((trained[0] / "history.json").read_text())
    result = using_parameters["evaluate"].check()
    # Training evaluated the same parameters on the same 10000 test images.
    assert result.lines == [f"test acc {history['epochs'][-1]['test_acc']:.3f} on 10000 "
                            f"Fashion-MNIST test images"]


def test_predict_names_the_ankle_boot_from_any_image_format(trained, boot_images,
                                                            using_parameters,
                                                            fashion_mnist_root):
    lines = using_parameters["predict"].check().lines
    assert len(lines) == 3
    parsed = [re.fullmatch(r"(.+): ([a-z -]+) (\d+\.\d)%, ([a-z -]+) (\d+\.\d)%, ([a-z -]+) "
                           r"(\d+\.\d)%", line) for line in lines]
    assert all(parsed), lines
    assert [m.group(1) for m in parsed] == [str(p) for p in boot_images]
    assert [m.group(2) for m in parsed] == ["ankle boot"] * 3
    # The PNG and the .npy go through the training pipeline: the probability is the one the
    # network gives the first test image as the test loader delivers it.
    net, _ = load_trained("lenet_bn", trained[0] / "model.params", device=mx.cpu())
    X, _ = next(iter(fashion_mnist_loader(False, batch_size=1, data_root=fashion_mnist_root)))
    with mx.autograd.predict_mode():
        expected = float(mx.npx.softmax(net(X))[0, ANKLE_BOOT])
    assert float(parsed[0].group(3)) == pytest.approx(100 * expected, abs=0.051)
    assert parsed[1].group(3) == parsed[0].group(3)


def _trained_hybrid(trained):
    net, _ = load_trained("lenet_bn_hybrid", trained[0] / "model.params", device=mx.cpu())
    x = mx.np.array(numpy.random.RandomState(0).uniform(size=(3, 1, 28, 28)).astype("float32"))
    with mx.autograd.predict_mode():
        return x, net(x).asnumpy()


def test_export_mxnet_reloads_with_identical_outputs(trained, using_parameters):
    from gluon_modern_cnn.tools.export import load_mxnet
    result = using_parameters["export-mxnet"].check()
    prefix = trained[0].parent / "exported" / "lenet"
    assert result.lines == [f"wrote {prefix}-symbol.json", f"wrote {prefix}-0000.params"]
    assert "exporting its hybridizable twin lenet_bn_hybrid" in result.stderr
    x, expected = _trained_hybrid(trained)
    numpy.testing.assert_array_equal(load_mxnet(prefix)(x).asnumpy(), expected)


@pytest.mark.skipif(not _onnx_available(), reason="onnxruntime 1.16.3 (the onnx extra) needs "
                    "numpy >= 1.24.2; this is the oldest-numpy environment")
def test_export_onnx_runs_in_onnxruntime_with_the_same_outputs(trained, using_parameters):
    import onnxruntime
    result = using_parameters["export-onnx"].check()
    path = trained[0].parent / "lenet.onnx"
    assert result.lines == [f"wrote {path}"]
    x, expected = _trained_hybrid(trained)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"data": x.asnumpy()})  # three images: the batch is dynamic
    numpy.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5 * abs(expected).max())


# ---------------------------------------------------------------------------------------------
# Help and wrong arguments (in-process: the console script runs cli.main)
# ---------------------------------------------------------------------------------------------

SUBCOMMANDS = ["list", "summary", "train", "launch", "evaluate", "predict", "export", "devices",
               "bench", "crosscheck", "reproduce"]


def test_every_subcommand_is_registered():
    parser = cli.build_parser()
    (subparsers,) = [a for a in parser._actions if a.dest == "command"]
    assert list(subparsers.choices) == SUBCOMMANDS


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([name, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: gluon-modern-cnn {name}")
    assert "options:" in out or "optional arguments:" in out


def _error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


@pytest.mark.parametrize("argv, message", [
    (["summary", "alexnet", "--size", "64"],
     r"alexnet needs inputs of at least 67x67 pixels; --size 64 is too small"),
    (["train", "alexnet", "--resize", "32"],
     r"alexnet needs input images of at least 67x67 pixels; resize=32 gives 32x32"),
    (["train", "lenet_bn", "--device", "gpu7"], r"train: error: gpu7 (does not exist|cannot be "
                                                r"used).*Available: cpu"),
    (["evaluate", "lenet_bn", "--params", "missing.params", "--device", "cpu9,cpu9"],
     r"device 'cpu9' is listed twice"),
    (["train", "lenet_bn", "--hybridize"], r"lenet_bn is the book's nn.Block version and cannot "
                                           r"be hybridized; use its twin 'lenet_bn_hybrid'"),
    (["evaluate", "lenet_bn", "--params", "missing.params", "--device", "cpu"],
     r"parameter file missing\.params does not exist"),
    (["train", "lenet_bn", "--resume", "no-such-run"], r"no-such-run does not exist"),
    (["train", "lenet_bn", "--resume", "a", "--overwrite"], r"--resume continues a run and "
                                                            r"--overwrite replaces one"),
], ids=["size-too-small", "resize-too-small",
        "missing-gpu", "device-twice", "block-hybridized", "missing-params", "missing-run",
        "resume-and-overwrite"])
def test_wrong_arguments_give_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    line = _error_line(capsys)
    assert line.startswith(f"gluon-modern-cnn {argv[0]}: error: ")
    assert re.search(message, line), line


@pytest.mark.parametrize("argv", [["train", "lenet_bn", "--epochs", "0"],
                                  ["train", "lenet_bn", "--lr", "fast"],
                                  ["export", "lenet_bn", "--params", "p", "--out", "x"]])
def test_malformed_options_are_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and re.search(r"gluon-modern-cnn \w+: error: ", err)


def test_parameters_of_another_model_are_named(trained, capsys, tmp_path):
    params = trained[0] / "model.params"
    assert cli.main(["evaluate", "alexnet", "--params", str(params), "--device", "cpu"]) == 2
    assert re.search(r"model\.params does not fit this alexnet \(missing .*; not in the alexnet: "
                     r".*running_mean.*\); is it a file of another model", _error_line(capsys))
    image = tmp_path / "image.npy"
    numpy.save(image, numpy.zeros((28, 28), numpy.uint8))
    assert cli.main(["predict", "lenet_bn_scratch", "--params", str(params), str(image),
                     "--device", "cpu"]) == 2
    assert "does not fit this lenet_bn_scratch" in _error_line(capsys)


def test_parameters_of_another_input_size_are_explained(trained, capsys):
    # The dense layers fix the input size; resnets and densenets pool it away, LeNet does not.
    assert cli.main(["evaluate", "lenet_bn", "--params", str(trained[0] / "model.params"),
                     "--resize", "32", "--device", "cpu"]) == 2
    assert re.search(r"do not fit 32x32 inputs; they were trained with another resize \(pass it "
                     r"with --resize\)", _error_line(capsys))


@pytest.mark.parametrize("content, message", [
    (b"not an image", r"bad\.png is neither an image file Pillow can read"),
    (numpy.zeros((2, 28, 28), numpy.uint8), r"bad\.npy holds an array of shape \(2, 28, 28\)"),
    (numpy.full((28, 28), 2.0), r"bad\.npy holds floats outside \[0, 1\]"),
])
def test_unreadable_images_are_named(trained, content, message, capsys, tmp_path):
    path = tmp_path / ("bad.png" if isinstance(content, bytes) else "bad.npy")
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        numpy.save(path, content)
    assert cli.main(["predict", "lenet_bn", "--params", str(trained[0] / "model.params"),
                     str(path), "--device", "cpu"]) == 2
    assert re.search(message, _error_line(capsys))


def test_export_of_the_scratch_batch_norm_lenet_goes_through_its_twin(tmp_path):
    from gluon_modern_cnn.training.checkpoint import save_parameters
    from gluon_modern_cnn.tools.export import load_mxnet
    net = get_model("lenet_bn_scratch")
    net.initialize(mx.init.Xavier())
    x = mx.np.array(numpy.random.RandomState(0).uniform(size=(3, 1, 28, 28)).astype("float32"))
    with mx.autograd.train_mode():
        net(x)  # moving statistics away from their zeros
    expected = net(x).asnumpy()
    save_parameters(net, tmp_path / "scratch.params")
    result = run("export", "lenet_bn_scratch", "--params", tmp_path / "scratch.params",
                 "--format", "mxnet", "--out", tmp_path / "m", cwd=tmp_path).check()
    assert "exporting its hybridizable twin lenet_bn_scratch_hybrid" in result.stderr
    numpy.testing.assert_allclose(load_mxnet(tmp_path / "m")(x).asnumpy(), expected,
                                  rtol=1e-4, atol=1e-5)


def test_export_of_a_model_without_a_graph_and_over_existing_files(trained, capsys, tmp_path):
    from test_checkpoint import TINY_CLI  # a registered nn.Block model without a twin
    params = str(trained[0] / "model.params")
    result = run("export", "tiny_dropout_bn", "--params", params, "--format", "mxnet",
                 "--out", tmp_path / "m", command=TINY_CLI, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "tiny_dropout_bn is an nn.Block (its forward is Python code) without a " \
           "hybridizable twin" in result.stderr
    mine = tmp_path / "m-symbol.json"
    mine.write_text("a user's file")
    assert cli.main(["export", "lenet_bn_hybrid", "--params", params, "--format", "mxnet",
                     "--out", str(tmp_path / "m")]) == 2
    assert re.search(r"m-symbol\.json already exist.*--overwrite", _error_line(capsys))
    assert mine.read_text() == "a user's file"


def test_a_data_root_without_the_files_says_where_to_put_them(tmp_path):
    # A subprocess: the real download attempt fails (no network) and the loader's message shows.
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("train", "lenet_bn", "--device", "cpu", "--data-root", empty, "--out",
                 tmp_path / "run", cwd=tmp_path).check(returncode=2)
    lines = result.stderr.splitlines()  # a short message, its lists on lines of their own
    assert lines[0].startswith("gluon-modern-cnn train: error: The Fashion-MNIST file "
                               "train-images-idx3-ubyte.gz is not in ")
    assert "could not be downloaded" in lines[0]
    assert [line.strip() for line in lines[1:3]] == [
        line.strip() for line in lines[1:3] if line.startswith("    - ")]  # the mirrors' failures
    assert "Connection refused" in result.stderr
    assert any(line.startswith("  Put the four files (") for line in lines)
    assert f"    {empty / 't10k-labels-idx1-ubyte.gz'}" in lines
    assert lines[-1].startswith("  or point FASHION_MNIST_ROOT=DIR") and "--data-root" in lines[-1]
    assert not (tmp_path / "run").exists()  # nothing written before the data was there


def test_bench_is_the_harness_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["bench", "--help"])
    usage = capsys.readouterr().out
    assert usage.startswith("usage: gluon-modern-cnn bench")
    assert "--chapter" in usage and "--preset {book,fast}" in usage
