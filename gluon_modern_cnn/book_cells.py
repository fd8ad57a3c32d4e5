"""The book's own MXNet cells, read from its Markdown source and run in order as a notebook kernel
would, with only the import line changed to this package.

Both source trees of ``../shared/editions`` are understood:

* 0.17 (``d2l-0.17/``, sections 7.1-7.7): a code cell is MXNet when it has no ``#@tab`` line or its
  ``#@tab`` list names ``mxnet`` or ``all``.
* 1.0 (``d2l-1.0/``, sections 8.1-8.8): a code cell is MXNet when its first line is ``%%tab`` with
  ``mxnet`` or ``all`` in its list; inside, ``tab.selected('mxnet')`` is true (``tab`` is what the
  book's ``%load_ext d2lbook.tab`` magic provides).

``%`` magics are dropped and ``from d2l import mxnet as d2l`` becomes
``import gluon_modern_cnn as d2l``; nothing else of a cell changes. ``python -m
gluon_modern_cnn.book_cells FILE.md [--short]`` runs one section; ``--short`` shortens the training
cells from outside (one epoch, two small batches) by wrapping the package's training and data
functions, never by editing a cell.
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path
from typing import List, Sequence

__all__ = ["IMPORT_LINE", "PACKAGE_IMPORT", "mxnet_cells", "run_cells", "shorten_training",
           "notebook", "main"]

IMPORT_LINE = "from d2l import mxnet as d2l"
PACKAGE_IMPORT = "import gluon_modern_cnn as d2l"

_CELL = re.compile(r"```\{\.python \.input[^}]*\}\n(.*?)```", re.S)
_TAB_LINE = re.compile(r"^(%%tab|#@tab)\s+(.*)$")


def _tab_names(spec: str) -> List[str]:
    return [name.strip() for name in spec.split(",")]


def mxnet_cells(path) -> List[str]:
    """The MXNet cells of one section's Markdown source, in order, ready to run."""
    text = Path(path).read_text(encoding="utf-8")
    cells = _CELL.findall(text)
    edition_1_0 = any(cell.startswith("%%tab") for cell in cells)
    selected = []
    for cell in cells:
        lines = cell.splitlines()
        match = _TAB_LINE.match(lines[0]) if lines else None
        if match:
            if not {"mxnet", "all"} & set(_tab_names(match.group(2))):
                continue
            lines = lines[1:]
        elif edition_1_0:
            continue   # 1.0 marks every framework's cells; unmarked ones are the book's tooling
        lines = [PACKAGE_IMPORT if line.strip() == IMPORT_LINE else line
                 for line in lines if not line.lstrip().startswith("%")]
        selected.append("\n".join(lines) + "\n")
    return selected


class Tab:
    """What ``%load_ext d2lbook.tab`` gives a 1.0 notebook, with MXNet selected."""

    def selected(self, *names) -> bool:
        return "mxnet" in names or "all" in names

    def interact_select(self, *args, **kwargs) -> None:
        pass


class _FewBatches:
    """The first ``num_batches`` batches of a loader, each cut to ``batch_size`` examples."""

    def __init__(self, loader, num_batches: int, batch_size: int):
        self.loader, self.num_batches, self.batch_size = loader, num_batches, batch_size

    def __len__(self) -> int:
        return min(self.num_batches, len(self.loader))

    def __iter__(self):
        for i, batch in enumerate(self.loader):
            if i == len(self):
                return
            yield tuple(part[:self.batch_size] for part in batch)


def shorten_training(num_batches: int = 2, batch_size: int = 16) -> None:
    """Make every training cell of both editions run one epoch of a few small batches, by
    wrapping the package's functions the cells call (their text stays the book's)."""
    import gluon_modern_cnn as d2l
    from gluon_modern_cnn import edition10

    load = d2l.load_data_fashion_mnist

    def load_data_fashion_mnist(batch_size_, resize=None, **kwargs):
        return tuple(_FewBatches(loader, num_batches, batch_size)
                     for loader in load(batch_size_, resize, fast=True, prefetch=0, **kwargs))

    train_ch6 = d2l.train_ch6

    def train_ch6_one_epoch(net, train_iter, test_iter, num_epochs, lr, *args, **kwargs):
        return train_ch6(net, train_iter, test_iter, 1, lr, *args, **kwargs)

    get_dataloader = edition10.FashionMNIST.get_dataloader

    def get_few(self, train):
        return _FewBatches(get_dataloader(self, train), num_batches, batch_size)

    trainer_init = edition10.Trainer.__init__

    def trainer_one_epoch(self, max_epochs, *args, **kwargs):
        trainer_init(self, 1, *args, **kwargs)
        self.hparams["max_epochs"] = max_epochs   # what the cell asked for, kept on record

    d2l.load_data_fashion_mnist = load_data_fashion_mnist
    d2l.train_ch6 = train_ch6_one_epoch
    edition10.FashionMNIST.get_dataloader = get_few
    edition10.Trainer.__init__ = trainer_one_epoch


def run_cells(cells: Sequence[str], *, out=sys.stdout) -> dict:
    """Run ``cells`` in order in one namespace, as a kernel does: a cell's final expression is
    shown (``Out[n]: repr``). Returns the namespace; the first failing cell raises."""
    namespace = {"__name__": "__main__", "tab": Tab()}
    for number, source in enumerate(cells, 1):
        tree = ast.parse(source, filename=f"<cell {number}>")
        last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        if last is not None:
            tree.body.pop()
        exec(compile(tree, f"<cell {number}>", "exec"), namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), f"<cell {number}>", "eval"),
                         namespace)
            if value is not None:
                print(f"Out[{number}]: {value!r}", file=out)
        print(f"[cell {number}/{len(cells)} ran]", file=out, flush=True)
    return namespace


#: The notebook's first cell: what ``%load_ext d2lbook.tab`` gives (``tab``), and with ``short``
#: the shortened training (the book's cells follow unchanged).
_SETUP = ("from gluon_modern_cnn.book_cells import Tab, shorten_training\n"
          "tab = Tab()\n")


def notebook(path, *, short: bool = False):
    """A Jupyter notebook (``nbformat``) of the section's MXNet cells, after one setup cell."""
    import nbformat
    setup = _SETUP + ("shorten_training()\n" if short else "")
    cells = [nbformat.v4.new_code_cell(setup)]
    cells += [nbformat.v4.new_code_cell(cell.rstrip("\n")) for cell in mxnet_cells(path)]
    return nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gluon_modern_cnn.book_cells",
                                     description="Run a section's MXNet cells from the book's "
                                                 "Markdown source, in order.")
    parser.add_argument("section", type=Path, help="the section's .md file")
    parser.add_argument("--short", action="store_true",
                        help="one epoch of two batches of 16 examples in every training cell")
    args = parser.parse_args(argv)
    cells = mxnet_cells(args.section)
    if args.short:
        shorten_training()
    run_cells(cells)
    return 0


if __name__ == "__main__":
    sys.exit(main())
