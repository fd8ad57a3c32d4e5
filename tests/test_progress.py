"""Progress where people wait: a bar on stderr in a terminal, a line per epoch elsewhere, and stdout
left to the book's lines."""
import io
import re
import sys

import mxnet as mx
from mxnet import gluon

import gluon_modern_cnn as d2l
from gluon_modern_cnn import book

from conftest import synthetic_loaders as _synthetic


def _mlp():
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(16, activation="relu"), gluon.nn.Dense(10))
    return net


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _train_ch6(monkeypatch, stderr, capsys, num_epochs=3):
    monkeypatch.setattr(sys, "stderr", stderr)
    history = d2l.train_ch6_with_history(_mlp(), *_synthetic(), num_epochs, 0.1, mx.cpu())
    return history, capsys.readouterr().out.splitlines()


def _check_book_lines(out, history):
    final = history.final
    assert out == [f"loss {final.train_loss:.3f}, train acc {final.train_acc:.3f}, "
                   f"test acc {final.test_acc:.3f}",
                   f"{history.examples_per_sec:.1f} examples/sec on cpu(0)"]
    assert book.SPEED_PATTERN.match(out[1])


def test_outside_a_terminal_each_epoch_gets_one_line(monkeypatch, capsys):
    log = io.StringIO()  # a log file, a pipe, CI: isatty() is False
    history, out = _train_ch6(monkeypatch, log, capsys)
    _check_book_lines(out, history)
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 3
    for line, record in zip(lines, history.epochs):
        assert line == (f"epoch {record.epoch}/3: loss {record.train_loss:.3f}, train acc "
                        f"{record.train_acc:.3f}, test acc {record.test_acc:.3f}, "
                        f"{record.wall_seconds:.1f} s")


def test_in_a_terminal_a_bar_per_epoch_ends_with_the_test_accuracy(monkeypatch, capsys):
    terminal = _Terminal()
    history, out = _train_ch6(monkeypatch, terminal, capsys, num_epochs=2)
    _check_book_lines(out, history)
    text = terminal.getvalue()
    assert "\r" in text  # redrawn in place
    for record in history.epochs:
        assert re.search(rf"epoch {record.epoch}/2: 100%.*4/4.*test_acc={record.test_acc:.3f}",
                         text), text


def test_the_loop_underneath_shows_it_and_can_be_quiet(monkeypatch, capsys):
    from gluon_modern_cnn.training import fit
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    fit(_mlp(), *_synthetic(), 1, lr=0.1, device=mx.cpu())
    assert log.getvalue().startswith("epoch 1/1: loss ")
    log.truncate(0)
    log.seek(0)
    fit(_mlp(), *_synthetic(), 1, lr=0.1, device=mx.cpu(), progress=False)
    assert log.getvalue() == "" and capsys.readouterr().out == ""


def test_an_epoch_without_a_train_accuracy_shows_none_rather_than_nan():
    # The 1.0 edition's Trainer measures accuracy on the validation data only.
    from gluon_modern_cnn.training.progress import format_epoch_line
    from gluon_modern_cnn.training import EpochRecord
    record = EpochRecord(1, 0.5, float("nan"), 0.75, 100, 1.0, 2.0)
    assert format_epoch_line(record, 3) == "epoch 1/3: loss 0.500, test acc 0.750, 2.0 s"
