"""Sections 5.11 (batch normalization) and 5.12 (ResNet) of the older (gluonbook) edition, run with
the edition's own ``nd`` cells as seed 000 prints them, on ``import gluon_modern_cnn.gluonbook as
gb`` in place of ``import gluonbook as gb``. Each run writes ``SECTION/output.txt`` (what the cells
printed) and ``SECTION/results.md`` (epoch by epoch beside the book's printed lines) next to this
file.

Run: python docs/reproduction/gluonbook/reproduce.py 5.11 [5.12]
     (FASHION_MNIST_ROOT=DIR for local data files; otherwise MXNet's cache or a download)
"""
import argparse
import contextlib
import io
import re
import sys
from pathlib import Path

import gluon_modern_cnn.gluonbook as gb
from gluon_modern_cnn import book
from mxnet import gluon, init, nd  # noqa: F401  (the cells' own imports)
from mxnet.gluon import nn

HERE = Path(__file__).parent
EPOCH_LINE = re.compile(r"epoch (\d+), loss ([\d.]+), train acc ([\d.]+), test acc ([\d.]+), "
                        r"time ([\d.]+) sec")


def section_5_11():
    """5.11.3: LeNet with the edition's scratch batch norm (eps=1e-5), lr 1.0, 5 epochs."""
    net = nn.Sequential()
    net.add(nn.Conv2D(6, kernel_size=5),
            gb.BatchNorm(6, num_dims=4),
            nn.Activation('sigmoid'),
            nn.MaxPool2D(pool_size=2, strides=2),
            nn.Conv2D(16, kernel_size=5),
            gb.BatchNorm(16, num_dims=4),
            nn.Activation('sigmoid'),
            nn.MaxPool2D(pool_size=2, strides=2),
            nn.Dense(120),
            gb.BatchNorm(120, num_dims=2),
            nn.Activation('sigmoid'),
            nn.Dense(84),
            gb.BatchNorm(84, num_dims=2),
            nn.Activation('sigmoid'),
            nn.Dense(10))
    lr = 1.0
    num_epochs = 5
    batch_size = 256
    ctx = gb.try_gpu()
    net.initialize(ctx=ctx, init=init.Xavier(), force_reinit=True)
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': lr})
    train_iter, test_iter = gb.load_data_fashion_mnist(batch_size)
    gb.train_ch5(net, train_iter, test_iter, batch_size, trainer, ctx, num_epochs)
    print(net[1].gamma.data().reshape((-1,)), net[1].beta.data().reshape((-1,)))


def section_5_12():
    """5.12.2-5.12.3: the edition's flat ResNet (three residual blocks per stage) on 28x28 inputs,
    lr 0.05, 5 epochs. The seed loses the data-loading line; its shape trace starts from 28x28."""
    net = nn.Sequential()
    net.add(nn.Conv2D(64, kernel_size=7, strides=2, padding=3),
            nn.BatchNorm(), nn.Activation('relu'),
            nn.MaxPool2D(pool_size=3, strides=2, padding=1))
    net.add(gb.Residual(num_channels=64),
            gb.Residual(num_channels=64),
            gb.Residual(num_channels=64),
            gb.Residual(num_channels=128, use_1x1conv=True, strides=2),
            gb.Residual(num_channels=128),
            gb.Residual(num_channels=128),
            gb.Residual(num_channels=256, use_1x1conv=True, strides=2),
            gb.Residual(num_channels=256),
            gb.Residual(num_channels=256),
            gb.Residual(num_channels=512, use_1x1conv=True, strides=2),
            gb.Residual(num_channels=512),
            gb.Residual(num_channels=512))
    net.add(nn.GlobalAvgPool2D(), nn.Dense(10))
    lr = 0.05
    num_epochs = 5
    batch_size = 256
    ctx = gb.try_gpu()
    net.initialize(force_reinit=True, ctx=ctx, init=init.Xavier())
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': lr})
    train_iter, test_iter = gb.load_data_fashion_mnist(batch_size)
    gb.train_ch5(net, train_iter, test_iter, batch_size, trainer, ctx, num_epochs)


SECTIONS = {"5.11": section_5_11, "5.12": section_5_12}


class Tee(io.TextIOBase):
    """stdout to the terminal and to the files at once, flushed line by line."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for stream in self.streams:
            stream.write(text)
            stream.flush()
        return len(text)


def results_page(key: str, printed: str) -> str:
    """The run's epoch lines beside the book's, as a Markdown page."""
    run = book.training_run(key)

    def epochs(lines):
        return {m.group(1): m.groups()[1:] for m in map(EPOCH_LINE.search, lines) if m}

    ours, theirs = epochs(printed.splitlines()), epochs(run.lines)
    rows = ["| epoch | loss (book / here) | train acc (book / here) | test acc (book / here) "
            "| seconds per epoch (book / here) |", "| ---: | --- | --- | --- | --- |"]
    for epoch in sorted(set(ours) | set(theirs), key=int):
        book_values, our_values = theirs.get(epoch, ("-",) * 4), ours.get(epoch, ("-",) * 4)
        rows.append(f"| {epoch} | "
                    + " | ".join(f"{a} / {b}" for a, b in zip(book_values, our_values)) + " |")
    parameters = []
    if run.parameter_lines:
        printed_after = printed.split(run.lines[-1].split(",")[0], 1)[-1] if ours else ""
        parameters = ["", f"Printed after training ({run.note}): the book's, then ours. They come "
                      "from other random numbers, so only their scale compares.", "", "```",
                      *run.parameter_lines, "```", "", "```",
                      *[line for line in printed_after.splitlines()[1:] if line.strip()], "```"]
    elif run.note:
        parameters = ["", f"The book's run: {run.note}."]
    if "Interrupted" in printed and ours:
        parameters += ["", f"Ours was stopped the same way, with Ctrl-C after epoch "
                       f"{max(ours, key=int)} (`train_ch5` finishes the batch and returns)."]
    return "\n".join([
        f"# {key} {book.section(key).title}: the edition's own `nd` code",
        "",
        f"`python docs/reproduction/gluonbook/reproduce.py {key}`: the edition's cells with "
        "`import gluon_modern_cnn.gluonbook as gb`, MXNet seed 0, real Fashion-MNIST, on 2 AMD "
        "EPYC (Zen 2) cores shared with other jobs (a load of about 5), so our seconds per epoch "
        "are several times an idle machine's. The book's times are its author's CPU.",
        *parameters,
        "", *rows, "", "Everything the cells printed: [output.txt](output.txt).", ""])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="+", choices=sorted(SECTIONS))
    parser.add_argument("--page-only", action="store_true",
                        help="rewrite results.md from the existing output.txt, without training")
    args = parser.parse_args(argv)
    import mxnet as mx
    for key in args.sections:
        if args.page_only:
            printed = (HERE / key / "output.txt").read_text()
            (HERE / key / "results.md").write_text(results_page(key, printed))
            continue
        mx.random.seed(0)
        folder = HERE / key
        folder.mkdir(exist_ok=True)
        captured = io.StringIO()
        with (folder / "output.txt").open("w") as log, \
                contextlib.redirect_stdout(Tee(sys.stdout, log, captured)):
            SECTIONS[key]()
        (folder / "results.md").write_text(results_page(key, captured.getvalue()))


if __name__ == "__main__":
    main()
