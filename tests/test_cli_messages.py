"""The command line as a new user meets it: help without arguments, --version, short messages that
name the option to fix (lists on their own lines), folders never created by a typo, --resume without
the model, plurals, and a cross-check that accounts for every section."""
import re

import mxnet as mx
import numpy as onp
import pytest

from gluon_modern_cnn import __version__, book, cli, data
from gluon_modern_cnn.data import FastImageLoader
from gluon_modern_cnn.training.experiment import resolve_settings, train_model
from gluon_modern_cnn.registry import list_models


def _error(capsys, argv, status=2):
    assert cli.main(argv) == status
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err


def test_no_arguments_print_the_help(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: gluon-modern-cnn ") and "COMMAND" in out and "crosscheck" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"gluon-modern-cnn {__version__}"


def test_an_unknown_model_gets_the_close_names_not_all_of_them(capsys):
    err = _error(capsys, ["train", "resnet81"])
    lines = err.splitlines()
    assert lines[0] == "gluon-modern-cnn train: error: unknown model 'resnet81'; did you mean:"
    assert "  resnet18" in lines[1:]
    assert lines[-1] == f"  `gluon-modern-cnn list` shows all {len(list_models())} models"
    assert len(lines) <= 7 and "densenet121" not in err
    err = _error(capsys, ["summary", "qwerty"])
    assert err == (f"gluon-modern-cnn summary: error: unknown model 'qwerty'; `gluon-modern-cnn "
                   f"list` shows all {len(list_models())} models\n")


@pytest.mark.parametrize("command", [["train", "lenet_bn"],
                                     ["evaluate", "lenet_bn", "--params", "x.params"],
                                     ["reproduce", "7.5"]])
def test_a_data_root_typo_is_named_and_never_created(command, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    typo = tmp_path / "fashoin-mnist"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(command + ["--data-root", str(typo)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --data-root: {typo} does not exist" in err
    assert not typo.exists() and sorted(tmp_path.iterdir()) == []


def test_the_missing_data_message_lists_on_lines_and_names_the_option(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        data.fashion_mnist_files(root=tmp_path, download=False)
    message = cli._message(err.value)
    lines = message.splitlines()
    assert lines[0].startswith("The Fashion-MNIST file train-images-idx3-ubyte.gz is not in ")
    assert sum(line.startswith("    ") for line in lines) == 5  # the reason and the four paths
    assert max(len(line) for line in lines[1:] if str(tmp_path) not in line) <= 100
    assert "--data-root" in message


def test_a_missing_gpu_does_not_claim_to_use_the_cpu(capsys):
    err = _error(capsys, ["train", "lenet_bn", "--device", "gpu7"])
    assert len(err.splitlines()) == 1
    assert re.search(r"gpu7 (does not exist|cannot be used)", err) and "using the CPU" not in err


def _finished_run(out):
    rng = onp.random.RandomState(0)
    images = rng.randint(0, 256, size=(32, 28, 28), dtype=onp.uint8)
    labels = rng.randint(0, 10, size=32).astype(onp.int32)
    loaders = (FastImageLoader(images, labels, 16, prefetch=0),
               FastImageLoader(images, labels, 16, prefetch=0))
    train_model(resolve_settings("lenet_bn_hybrid", num_epochs=1, batch_size=16), out=out,
                device=mx.cpu(), data=loaders, progress=False, quiet=True)


def test_resume_needs_no_model_name(tmp_path, capsys):
    run = tmp_path / "run"
    _finished_run(run)
    # The checkpoint is read (it names the model) and the finished run explained.
    err = _error(capsys, ["train", "--resume", str(run)])
    assert f"the run in {run} has finished 1 of its 1 epochs" in err
    err = _error(capsys, ["train", "alexnet", "--resume", str(run)])
    assert "is for lenet_bn_hybrid, not alexnet" in err
    err = _error(capsys, ["train"])
    assert err.strip() == ("gluon-modern-cnn train: error: name the MODEL to train (see "
                           "`gluon-modern-cnn list`), or continue a run with --resume DIR")


def test_crosscheck_accounts_for_every_section(capsys):
    assert cli.main(["crosscheck"]) == 0
    out = capsys.readouterr().out
    headers = re.findall(r"^== (\S+) .*: (MATCH|MISMATCH|NOTHING TO CHECK)$", out, re.MULTILINE)
    assert [key for key, _ in headers] == list(book.SECTIONS)
    unchecked = [key for key, verdict in headers if verdict == "NOTHING TO CHECK"]
    trained_only = [key for key in unchecked if book.edition(key) != "1.0"]
    assert trained_only == ["7.5", "5.11"]
    for key in trained_only:
        assert f"prints only training results" in out and f"reproduce {key}`" in out
    assert unchecked[2:] == [key for key in book.SECTIONS if book.edition(key) == "1.0"]
    assert out.count("the 1.0 edition's source keeps no printed output") == len(unchecked) - 2
    assert out.strip().endswith("sections match the book; nothing deterministic to check in "
                                + ", ".join(unchecked))


def test_one_seed_default_stated_by_the_help(capsys):
    # The seed of a run that names none is decided in one place; every entry point uses it and
    # `--help` says which it is.
    import inspect

    from gluon_modern_cnn.bench import BenchConfig
    from gluon_modern_cnn.training.experiment import DEFAULT_SEED, RunSettings
    from gluon_modern_cnn.training.reproduce import reproduce
    assert resolve_settings("lenet_bn").seed == DEFAULT_SEED
    assert RunSettings("lenet_bn", 1.0, 1, 1, None).seed == DEFAULT_SEED
    assert BenchConfig("lenet_bn").seed == DEFAULT_SEED
    assert inspect.signature(reproduce).parameters["seed"].default == DEFAULT_SEED
    for command in ("train", "reproduce"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert f"(default {DEFAULT_SEED}" in text.split("--seed SEED", 1)[1]
    assert cli.build_parser().parse_args(["reproduce", "7.5"]).seed == DEFAULT_SEED
