"""Progress of a training run on stderr, where it never mixes with the book's lines on stdout.

In a terminal a tqdm bar per epoch, with the running loss and accuracy and, once the epoch ends,
its test accuracy; in a Jupyter kernel nothing (the book's animated figure is the progress there,
and a cell shows exactly the book's output); anywhere else (a log file, a pipe, CI) one plain line
per finished epoch, without the carriage returns a bar redraws itself with. :func:`training.fit` shows
it by default, so every entry point built on that loop (``train_ch6``, ``train_ch13``, the
command line's ``train``) has it.

The class implements the loop's callback methods without importing :mod:`training`, which uses it.
"""
from __future__ import annotations

import math
import sys
from typing import Optional, TextIO

from ..runtime.console import in_jupyter_kernel, is_interactive

__all__ = ["Progress", "is_interactive", "format_epoch_line"]


def format_epoch_line(record, num_epochs: int) -> str:
    """The line a finished epoch gets outside a terminal (without a train accuracy where the loop
    has none: the 1.0 edition's ``Trainer`` measures accuracy on the validation data only).

    Args:
        record: the epoch's results (an ``EpochRecord``).
        num_epochs: the run's number of epochs, shown as ``epoch N/num_epochs``.
    """
    acc = f", train acc {record.train_acc:.3f}" if math.isfinite(record.train_acc) else ""
    return (f"epoch {record.epoch}/{num_epochs}: loss {record.train_loss:.3f}{acc}, test acc "
            f"{record.test_acc:.3f}, {record.wall_seconds:.1f} s")


def _postfix(state, **more) -> dict:
    """The bar's running figures (no accuracy where the loop measures none)."""
    shown = {"loss": f"{state.train_loss:.3f}"}
    if math.isfinite(state.train_acc):
        shown["acc"] = f"{state.train_acc:.3f}"
    return {**shown, **more}


class Progress:
    """A training callback: a tqdm bar per epoch where someone watches the stream, one line per
    finished epoch elsewhere, nothing in a Jupyter kernel.

    Args:
        file: the stream to write to; default ``None``, stderr (looked up when writing).
        interactive: draw bars (True) or lines (False); default ``None``, detected from the stream.
        lines: print a line per epoch when not interactive (default); false for the older
            edition's ``train_ch5``, which prints its own line per epoch.
    """

    def __init__(self, *, file: Optional[TextIO] = None, interactive: Optional[bool] = None,
                 lines: bool = True):
        self.file = file
        self.interactive = interactive
        self.lines = lines
        self.bar = None

    def _stream(self) -> TextIO:
        return self.file or sys.stderr  # looked up late: pytest and notebooks swap sys.stderr

    def on_train_begin(self, state) -> None:
        if self.interactive is None:
            self.interactive = is_interactive(self._stream())
            if not self.interactive and in_jupyter_kernel():
                self.lines = False

    def on_epoch_begin(self, state) -> None:
        if self.interactive:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=state.num_batches, unit="batch", leave=True, file=self._stream(),
                            desc=f"epoch {state.epoch + 1}/{state.num_epochs}")

    def on_batch_end(self, state) -> None:
        if self.bar is not None:
            self.bar.set_postfix(_postfix(state), refresh=False)
            self.bar.update(1)

    def on_epoch_end(self, state) -> None:
        final = state.history.final
        if self.bar is not None:
            self.bar.set_postfix(_postfix(state, test_acc=f"{final.test_acc:.3f}"),
                                 refresh=False)
            self._close()  # draws the bar a last time, with the test accuracy
        elif self.lines:
            print(format_epoch_line(final, state.num_epochs), file=self._stream(), flush=True)

    def on_train_end(self, state) -> None:
        self._close()  # an interrupted epoch's bar

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
