"""The command line: ``gluon-modern-cnn <command>`` or ``python -m gluon_modern_cnn <command>``.

Each subcommand is a few lines of argument parsing over a public function of the package that a
script or notebook can call directly. Wrong arguments give a short message (a list over several
lines) naming the option to fix, and exit status 2.
A subcommand is a function ``add_parser(subparsers)`` registered with ``@command(name)``; the
benchmark harness brings its own (``gluon_modern_cnn.bench``).
"""
from __future__ import annotations

import argparse
import contextlib
import difflib
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

from .runtime import distributed
from .checks import positive_float_arg, positive_int_arg
from .runtime.files import OutputError, claim_run_folder, describe_os_error
from .training.experiment import DEFAULT_SEED
from .training.precision import PRECISIONS

__all__ = ["main", "launch_main", "build_parser", "command", "UsageError"]

_COMMANDS: Dict[str, Callable[[argparse._SubParsersAction], None]] = {}


class UsageError(Exception):
    """A problem with the command line the user can fix; printed without a traceback."""


def command(name: str):
    """Register ``add_parser(subparsers)`` as the builder of subcommand ``name``."""
    def decorator(add_parser):
        _COMMANDS[name] = add_parser
        return add_parser
    return decorator


_positive_int, _positive_float = positive_int_arg, positive_float_arg


def _model_name(name: str) -> str:
    """Check a model name before data or devices load; a typo gets the closest names, not all."""
    from .models import list_models, model_info
    try:
        model_info(name)
    except ValueError:
        names = list_models()
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.6)
        hint = ("; did you mean:\n" + "\n".join(close) + "\n") if close else "; "
        raise UsageError(f"unknown model {name!r}{hint}`gluon-modern-cnn list` shows all "
                         f"{len(names)} models") from None
    return name


def _existing_dir(text: str) -> str:
    """A folder option's value: it must exist (the command never creates it by mistake)."""
    path = Path(text).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder")
    return text


def _add_data_root(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", default=None, metavar="DIR", type=_existing_dir,
                   help="existing folder with the Fashion-MNIST files (default: "
                        "$FASHION_MNIST_ROOT, else ~/.mxnet/datasets/fashion-mnist, where they "
                        "are downloaded on first use)")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="registered model name (see `list`)")


def _add_device(p: argparse.ArgumentParser, default: Optional[str] = "auto") -> None:
    p.add_argument("--device", default=default,
                   help="cpu, gpu0, auto (= try_gpu(), the default), or a comma-separated list "
                        "such as gpu0,gpu1 for data-parallel training")


def _add_trained(p: argparse.ArgumentParser) -> None:
    """Options of the commands that use trained parameters."""
    _add_model(p)
    p.add_argument("--params", required=True, metavar="FILE",
                   help="parameter file, e.g. the model.params a `train` run wrote")
    p.add_argument("--resize", type=_positive_int, default=None, metavar="N",
                   help="image size the parameters were trained for (default: the one in the "
                        "settings.json beside FILE, else the book's)")


@command("list")
def _add_list(subparsers) -> None:
    p = subparsers.add_parser("list", help="registered models with their section and book settings",
                              description="List the registered models, the book section or paper "
                                          "each comes from, and the book's training settings.")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'resnet*'")
    p.set_defaults(func=_run_list)


def _run_list(args) -> int:
    from .models import list_models, model_info
    names = list_models(args.pattern)
    if not names:
        raise UsageError(f"no registered model matches {args.pattern!r}")
    header = ("model", "section", "input", "classes", "lr", "epochs", "batch", "resize")
    rows = [header]
    for name in names:
        info = model_info(name)
        hp = info.hyperparameters
        settings = (str(hp.lr), str(hp.num_epochs), str(hp.batch_size), str(hp.resize or "-")) \
            if hp else ("-", "-", "-", "-")
        rows.append((name, info.section, f"{info.in_channels}x{info.input_size}x{info.input_size}",
                     str(info.num_classes)) + settings)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


@command("summary")
def _add_summary(subparsers) -> None:
    p = subparsers.add_parser(
        "summary", help="the book's shape trace with parameters and FLOPs per layer",
        description="Print each top-level layer's output shape as the chapter's trace cells do "
                    "(`name output shape: (...)`), with its trainable parameters and forward "
                    "FLOPs per example, and the totals.")
    _add_model(p)
    p.add_argument("--size", type=_positive_int, default=None, metavar="N",
                   help="input height and width (default: the model's own, e.g. 224 for AlexNet)")
    p.set_defaults(func=_run_summary)


def _run_summary(args) -> int:
    import mxnet as mx
    from .models import get_model, model_info
    from .tools.summary import format_summary, model_summary
    info = model_info(_model_name(args.model))
    size = args.size or info.input_size
    if size < info.min_input_size:
        raise UsageError(f"{args.model} needs inputs of at least {info.min_input_size}x"
                         f"{info.min_input_size} pixels; --size {size} is too small")
    with mx.name.NameManager():  # layer names numbered as in a fresh notebook, as the book shows
        net = get_model(args.model)
    print("\n".join(format_summary(model_summary(net, (1, info.in_channels, size, size)))))
    return 0


@command("train")
def _add_train(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a model on Fashion-MNIST with the book's settings, with checkpoints",
        description="Train MODEL on Fashion-MNIST with the hyperparameters of its book section "
                    "(each overridable), show a progress bar per epoch, print the book's two "
                    "result lines, and write settings.json, history.json, curve.png and "
                    "model.params to --out, with a checkpoint (checkpoint.zip) after every "
                    "epoch. An interrupted run continues with --resume. With --kvstore dist_sync "
                    "it runs as one worker of a cluster started by `gluon-modern-cnn launch`: "
                    "--batch-size is per worker, each worker trains on its shard of the images "
                    "and rank 0 alone writes the outputs (see docs/distributed.md).")
    p.add_argument("model", metavar="MODEL", nargs="?",
                   help="registered model name (see `list`); optional with --resume")
    p.add_argument("--lr", type=_positive_float, default=None, help="learning rate")
    p.add_argument("--epochs", type=_positive_int, default=None, dest="num_epochs", metavar="N",
                   help="number of epochs")
    p.add_argument("--batch-size", type=_positive_int, default=None, help="minibatch size")
    p.add_argument("--resize", type=_positive_int, default=None, metavar="N",
                   help="resize the 28x28 images to NxN")
    p.add_argument("--hybridize", action="store_const", const=True, default=None,
                   help="hybridize the network (for the *_hybrid models)")
    p.add_argument("--subset", type=_positive_int, default=None, metavar="N",
                   help="train and test on the first N images of each split (quick runs)")
    p.add_argument("--dtype", choices=PRECISIONS, default=None,
                   help="float32 (the book's) or bfloat16: a _hybrid twin's convolutions and "
                        "dense layers in bfloat16, weights, optimizer, batch norm statistics and "
                        "loss in float32 (CPUs with avx512_bf16 or amx_bf16; implies --hybridize)")
    p.add_argument("--seed", type=int, default=None,
                   help=f"random seed of the initialization, shuffling and dropout (default "
                        f"{DEFAULT_SEED}; --resume keeps the run's)")
    _add_device(p, default=None)
    _add_data_root(p)
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: runs/MODEL); refused if it holds a run")
    p.add_argument("--resume", default=None, metavar="DIR",
                   help="continue the run in DIR from its last checkpoint, with its settings")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out")
    p.add_argument("--kvstore", default=None, choices=distributed.KVSTORE_TYPES,
                   help="how gradients are combined: device (the default) or local on this "
                        "machine; dist_sync, dist_sync_device or dist_async on a cluster started "
                        "by `gluon-modern-cnn launch`")
    p.set_defaults(func=_run_train)


_RUN_SETTINGS = ("lr", "num_epochs", "batch_size", "resize", "hybridize", "subset", "seed",
                 "dtype")


def _run_train(args) -> int:
    if args.model is None and args.resume is None:
        raise UsageError("name the MODEL to train (see `gluon-modern-cnn list`), or continue a "
                         "run with --resume DIR")
    if args.model is not None:
        _model_name(args.model)
    if args.resume is not None:
        if args.overwrite:
            raise UsageError("--resume continues a run and --overwrite replaces one; give one")
        if args.out is not None and Path(args.out).resolve() != Path(args.resume).resolve():
            raise UsageError("--resume DIR continues the run in DIR and writes there; leave out "
                             "--out")
    try:
        outcome = _train_or_resume(args)
    except OutputError as err:
        raise UsageError(_after_write_error(err, args)) from None
    if outcome.history.interrupted:
        done, out = len(outcome.history.epochs), outcome.out
        status = 143 if outcome.history.stopped_by == "SIGTERM" else 130
        if outcome.plan.cluster is not None:
            print(f"interrupted after {_plural(done, 'finished epoch')}" + (
                f"; the weights of epoch {done} are in {out}" if out and done else ""),
                file=sys.stderr)
        else:
            print(f"interrupted; the checkpoint of epoch {done} is in {out}. Continue with: "
                  f"gluon-modern-cnn train --resume {out}" if done else
                  "interrupted during the first epoch, before any checkpoint; run the same "
                  "command again to start over", file=sys.stderr)
        return status
    return 0


def _train_or_resume(args):
    """The run, holding its folder for the whole of it (a second run into it is refused)."""
    from .training.experiment import (plan_run, prepare_output, resolve_settings,
                                      resume_training, run_training)
    given = {name: getattr(args, name) for name in _RUN_SETTINGS
             if getattr(args, name) is not None}
    kvstore = args.kvstore or "device"
    if args.resume is not None:
        return resume_training(args.resume, model=args.model, settings=given, device=args.device,
                               data_root=args.data_root, kvstore=kvstore)
    plan = plan_run(resolve_settings(args.model, **given), device=args.device,
                    data_root=args.data_root, kvstore=kvstore,
                    out=args.out or Path("runs") / args.model)
    with claim_run_folder(plan.out) if plan.out is not None else contextlib.nullcontext():
        if plan.out is not None:
            prepare_output(plan.out, overwrite=args.overwrite)
        return run_training(plan)


def _after_write_error(err: OSError, args) -> str:
    """A failed write, with what survives of the run and how to continue it."""
    from .training.experiment import OUTPUT_FILES
    folder = Path(args.resume or args.out or Path("runs") / args.model)
    checkpoint = folder / OUTPUT_FILES["checkpoint"]
    resume = f"gluon-modern-cnn train --resume {folder}"
    if checkpoint.is_file() and getattr(err, "path", None) == checkpoint:
        return f"{err}. Once that is fixed, continue from it with: {resume}"
    if checkpoint.is_file():
        return (f"{err}. The checkpoint of the last finished epoch ({checkpoint}) is intact; "
                f"once that is fixed, continue with: {resume}")
    return f"{err}. Nothing was trained yet; once that is fixed, run the same command again"


_LAUNCH_DESCRIPTION = ("Start COMMAND as MXNet's ps-lite cluster: a scheduler, S servers and W "
                       "workers, on this machine or over ssh on the hosts of a hosts file, "
                       "forward their output, and stop every process as soon as one fails "
                       "(naming a failed worker by its kvstore rank).")


@command("launch")
def _add_launch(subparsers) -> None:
    p = subparsers.add_parser(
        "launch", help="run a command as a parameter-server cluster (here or over ssh)",
        description=_LAUNCH_DESCRIPTION + " Example: gluon-modern-cnn launch -n 2 -- "
                    "gluon-modern-cnn train lenet_bn --kvstore dist_sync. See "
                    "docs/distributed.md.")
    _add_launch_arguments(p)
    p.set_defaults(func=_run_launch)


def _add_launch_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``launch`` options to ``parser`` (the subcommand's or :func:`launch_main`'s)."""
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
                                                 f"machine, {distributed.DEFAULT_PORT} with --hosts)")
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
    parser.add_argument("--stall-timeout", type=float, default=distributed.DEFAULT_STALL_TIMEOUT,
                        metavar="SECONDS",
                        help=f"fail when a worker on this machine is stopped or uses no CPU for "
                             f"this long (default {distributed.DEFAULT_STALL_TIMEOUT:g}; 0: never)")
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


def _run_launch(args) -> int:
    command = args.program[1:] if args.program[:1] == ["--"] else args.program
    env = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--env takes VAR=VALUE, got {item!r}")
        env[name] = value
    try:
        ssh_options = shlex.split(args.ssh_options)
    except ValueError as err:
        raise UsageError(f"--ssh-options {args.ssh_options!r}: {err}") from None
    return distributed.run_cluster(
        command, num_workers=args.num_workers, num_servers=args.num_servers,
        hosts_file=args.hosts, scheduler=args.scheduler, scheduler_host=args.scheduler_host,
        port=args.port, env=env, independent=args.independent, workdir=args.workdir,
        ssh_options=ssh_options, timeout=args.timeout, grace=args.grace,
        stall_timeout=args.stall_timeout, dry_run=args.dry_run)


def launch_main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m gluon_modern_cnn.distributed [options] -- COMMAND``: the ``launch`` command
    under the launcher's own name; returns the exit status."""
    parser = _add_launch_arguments(argparse.ArgumentParser(
        prog="python -m gluon_modern_cnn.distributed",
        description=_LAUNCH_DESCRIPTION +
        " The same as `gluon-modern-cnn launch`."))
    return _run_reporting_errors(_run_launch, parser.parse_args(argv), parser.prog)


@command("evaluate")
def _add_evaluate(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="test accuracy of trained parameters on Fashion-MNIST",
        description="Load MODEL with the parameters in FILE and print its accuracy on the "
                    "Fashion-MNIST test images.")
    _add_trained(p)
    p.add_argument("--batch-size", type=_positive_int, default=256)
    p.add_argument("--subset", type=_positive_int, default=None, metavar="N",
                   help="evaluate on the first N test images only")
    _add_device(p)
    _add_data_root(p)
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args) -> int:
    from .runtime.devices import parse_devices
    from .training.inference import evaluate_model
    devices = parse_devices(args.device)
    accuracy, count = evaluate_model(_model_name(args.model), args.params,
                                     data_root=args.data_root, batch_size=args.batch_size,
                                     resize=args.resize, device=devices[0], subset=args.subset)
    print(f"test acc {accuracy:.3f} on {count} Fashion-MNIST test images")
    return 0


@command("predict")
def _add_predict(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="classify images with trained parameters",
        description="Classify each IMAGE (PNG, JPEG, ... or a .npy array) with MODEL and the "
                    "parameters in FILE: the image is made grayscale and resized as in "
                    "training. Prints the most likely Fashion-MNIST classes with their "
                    "probabilities. Fashion-MNIST shows light objects on a black background.")
    _add_trained(p)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--top", type=_positive_int, default=3, help="classes shown per image")
    _add_device(p)
    p.set_defaults(func=_run_predict)


def _run_predict(args) -> int:
    from .runtime.devices import parse_devices
    from .training.inference import predict_images
    for prediction in predict_images(_model_name(args.model), args.params, args.images,
                                     resize=args.resize, device=parse_devices(args.device)[0],
                                     top=args.top):
        classes = ", ".join(f"{label} {probability:.1%}"
                            for label, probability in prediction.classes)
        print(f"{prediction.source}: {classes}")
    return 0


@command("export")
def _add_export(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="export trained parameters as an MXNet graph or an ONNX model",
        description="Export MODEL with the parameters in FILE for deployment: --format mxnet "
                    "writes PREFIX-symbol.json and PREFIX-0000.params (load with "
                    "gluon.SymbolBlock.imports), --format onnx writes PREFIX.onnx (needs the "
                    "onnx extra). A book nn.Block model is exported as its hybridizable twin, "
                    "which has the same parameters.")
    _add_trained(p)
    p.add_argument("--format", choices=("mxnet", "onnx"), required=True)
    p.add_argument("--out", required=True, metavar="PREFIX", help="output path prefix")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 13)")
    p.add_argument("--dynamic-batch", action="store_true",
                   help="ONNX: leave the batch dimension open")
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    p.set_defaults(func=_run_export)


def _run_export(args) -> int:
    import mxnet as mx
    from .tools import export
    from .training.inference import load_trained
    from .models import model_info
    name = _model_name(args.model)
    if args.format == "mxnet" and (args.opset is not None or args.dynamic_batch):
        raise UsageError("--opset and --dynamic-batch apply to --format onnx only")
    net, resize = load_trained(name, args.params, resize=args.resize, device=mx.cpu(),
                               hybrid=True)
    info = model_info(name)
    if not info.hybrid:
        print(f"{name} is the book's nn.Block version; exporting its hybridizable twin "
              f"{info.hybrid_model} (same parameters)", file=sys.stderr)
    size = resize or 28  # Fashion-MNIST's own size when the model trains without a resize
    shape = (1, info.in_channels, size, size)
    try:
        if args.format == "mxnet":
            files = export.export_mxnet(net, args.out, input_shape=shape,
                                        overwrite=args.overwrite)
        else:
            target = args.out if args.out.endswith(".onnx") else f"{args.out}.onnx"
            options = {} if args.opset is None else {"opset": args.opset}
            files = [export.export_onnx(net, target, input_shape=shape, overwrite=args.overwrite,
                                        dynamic_batch=args.dynamic_batch, **options)]
    except FileExistsError as err:
        raise UsageError(f"{err} (on the command line: --overwrite)") from None
    except (ImportError, NotImplementedError) as err:
        raise UsageError(str(err)) from None
    for path in files:
        print(f"wrote {path}")
    return 0


@command("devices")
def _add_devices(subparsers) -> None:
    p = subparsers.add_parser(
        "devices", help="GPUs, driver and MXNet build: what training can use",
        description="Report the GPUs, the driver, the installed MXNet wheel's CUDA support and "
                    "which device `--device auto` (try_gpu) picks.")
    p.set_defaults(func=_run_devices)


def _run_devices(args) -> int:
    from .runtime.devices import describe_devices
    print(describe_devices())
    return 0


@command("bench")
def _add_bench(subparsers) -> None:
    from .bench.command import add_bench_parser  # sets func=run_bench
    add_bench_parser(subparsers)


@command("crosscheck")
def _add_crosscheck(subparsers) -> None:
    p = subparsers.add_parser(
        "crosscheck", help="replay the book's shape traces and compare with what it printed",
        description="Replay each section's deterministic cells (model construction and shape "
                    "traces) in a fresh name scope and print the package's lines beside the "
                    "book's; sections that print only training results are listed with the "
                    "reason. Exits 1 when anything differs.")
    p.add_argument("--section", action="append", metavar="KEY",
                   help="section to check, e.g. 7.6 (repeatable; default: all)")
    p.add_argument("--edition", choices=["gluonbook", "0.17"], default=None,
                   help="only the sections of this edition of the book")
    p.set_defaults(func=_run_crosscheck)


def _run_crosscheck(args) -> int:
    from .tools.crosscheck import crosscheck, format_report
    checks = crosscheck(args.section, edition=args.edition)
    print(format_report(checks))
    return 0 if all(c.ok for c in checks) else 1


@command("reproduce")
def _add_reproduce(subparsers) -> None:
    p = subparsers.add_parser(
        "reproduce", help="train a section's models with the book's settings, compare results",
        description="Train every model a section of the book trains, with the book's learning "
                    "rate, epochs, batch size and resize, and write results.json / results.md "
                    "with the package's final loss and accuracies beside the book's.")
    p.add_argument("section", help="book section, e.g. 7.5")
    p.add_argument("--model", action="append", dest="models", metavar="NAME",
                   help="only this model of the section (repeatable)")
    p.add_argument("--out", default=None, help="output folder (default: reproduction/SECTION)")
    _add_device(p)
    _add_data_root(p)
    p.add_argument("--epochs", type=_positive_int, default=None,
                   help="override the book's epochs")
    p.add_argument("--hybridize", action="store_true",
                   help="train the hybridizable twins, hybridized (same architecture, faster)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"random seed (default {DEFAULT_SEED})")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the results of an earlier reproduction in --out")
    p.set_defaults(func=_run_reproduce)


def _run_reproduce(args) -> int:
    from .runtime.devices import parse_devices
    from .training.reproduce import reproduce
    out = args.out or f"reproduction/{args.section}"
    results = reproduce(args.section, models=args.models, device=parse_devices(args.device),
                        data_root=args.data_root, out=out, num_epochs=args.epochs,
                        hybridize=args.hybridize, seed=args.seed, overwrite=args.overwrite)
    print(f"results written to {out}/results.md")
    if not any(r["interrupted"] for r in results):
        return 0
    return 143 if any(r.get("stopped_by") == "SIGTERM" for r in results) else 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gluon-modern-cnn",
        description="The 'Modern Convolutional Neural Networks' chapter of Dive into Deep "
                    "Learning (MXNet/Gluon edition): models, training, benchmarks, cross-checks.")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add_parser in _COMMANDS.values():
        add_parser(subparsers)
    return parser


def _message(err: BaseException) -> str:
    """An error message as the terminal shows it: lists stay on their lines, indented under the
    first."""
    lines = [line.rstrip() for line in str(err).strip().splitlines() if line.strip()]
    lines = lines or [type(err).__name__]
    return "\n".join([lines[0]] + [f"  {line}" for line in lines[1:]])


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # no command: what a user typing the bare name wants is the help
        parser.print_help()
        return 0
    return _run_reporting_errors(args.func, args, f"{parser.prog} {args.command}")


def _run_reporting_errors(run: Callable[[argparse.Namespace], int], args: argparse.Namespace,
                          name: str) -> int:
    """``run(args)``, with every error a user can fix printed as ``NAME: error: ...`` (exit
    status 2) and an interruption as ``NAME: interrupted`` (130, or 143 after SIGTERM)."""
    previous = _stop_on_sigterm()
    try:
        return run(args)
    except (UsageError, ValueError, OSError, FloatingPointError, MemoryError) as err:
        # OSError: files and folders (disk full, read-only, no permission, a folder where a file
        # should be, a busy run folder); FloatingPointError: training diverged.
        message = _message(err)
        if isinstance(err, MemoryError):
            message = (f"out of memory ({message}); choose a smaller --batch-size or --resize, "
                       f"or a smaller model")
        if isinstance(err, OSError) and not isinstance(err, OutputError) and err.filename \
                and err.strerror:
            message = describe_os_error(err, err.filename, action="use")
        print(f"{name}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        # A reason beyond the signal itself (the launcher's "stopped the cluster") is shown.
        detail = "" if str(err) in ("", "SIGTERM") else f": {err}"
        print(f"{name}: interrupted{detail}", file=sys.stderr)
        return 143 if str(err) == "SIGTERM" else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminated(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


def _stop_on_sigterm():
    """SIGTERM as Ctrl-C (a message and exit status 143, not a silent death) outside training,
    which handles it itself (stopping after the batch); returns the handler it replaced."""
    if (not hasattr(signal, "SIGTERM") or threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):  # e.g. ignored on purpose
        return None
    return signal.signal(signal.SIGTERM, _terminated)


if __name__ == "__main__":
    sys.exit(main())
