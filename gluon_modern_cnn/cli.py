"""The command line: ``gluon-modern-cnn <command>`` or ``python -m gluon_modern_cnn <command>``.

Each subcommand is a few lines of argument parsing over a public function of the package that a
script or notebook can call directly. Wrong arguments give a short message and exit status 2.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Dict, List, Optional, Sequence

__all__ = ["main", "build_parser"]

_COMMANDS: Dict[str, Callable[[argparse._SubParsersAction], None]] = {}


class UsageError(Exception):
    """A problem with the command line the user can fix; printed without a traceback."""


def command(name: str):
    """Register ``add_parser(subparsers)`` as the builder of subcommand ``name``."""
    def decorator(add_parser):
        _COMMANDS[name] = add_parser
        return add_parser
    return decorator


@command("list")
def _add_list(subparsers) -> None:
    p = subparsers.add_parser("list", help="registered models with their section and book settings",
                              description="List the registered models, the book section or paper "
                                          "each comes from, and the book's training settings.")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'resnet*'")
    p.set_defaults(func=_run_list)


def _run_list(args) -> int:
    from .registry import list_models, model_info
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


@command("crosscheck")
def _add_crosscheck(subparsers) -> None:
    p = subparsers.add_parser(
        "crosscheck", help="replay the book's shape traces and compare with what it printed",
        description="Replay each section's deterministic cells (model construction and shape "
                    "traces) in a fresh name scope and print the package's lines beside the "
                    "book's. Exits 1 when anything differs.")
    p.add_argument("--section", action="append", metavar="KEY",
                   help="section to check, e.g. 7.6 (repeatable; default: all)")
    p.set_defaults(func=_run_crosscheck)


def _run_crosscheck(args) -> int:
    from .crosscheck import crosscheck, format_report
    checks = crosscheck(args.section)
    print(format_report(checks))
    return 0 if all(c.ok for c in checks) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gluon-modern-cnn",
        description="The 'Modern Convolutional Neural Networks' chapter of Dive into Deep "
                    "Learning (MXNet/Gluon edition): models, training, benchmarks, cross-checks.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_parser in _COMMANDS.values():
        add_parser(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, ValueError, FileNotFoundError) as err:
        print(f"{parser.prog} {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog} {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
