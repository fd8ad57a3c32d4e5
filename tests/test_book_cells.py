"""The book's own MXNet cells, read from ../shared/editions (both source trees), run in order in a
fresh process per section with only the import line changed; training cells are shortened from
outside (one epoch, two batches of 16), never edited."""
import os
import re
import subprocess
import sys

import pytest

from gluon_modern_cnn import book_cells

# The sections of both source trees (under the `editions_dir` fixture's folder), named here so that
# the tests are collected, and skipped saying what is missing, on a clone without the book's text.
SECTIONS = [f"d2l-0.17/{name}.md" for name in ("alexnet", "batch-norm", "densenet", "googlenet",
                                               "nin", "resnet", "vgg")] + \
           [f"d2l-1.0/{name}.md" for name in ("alexnet", "batch-norm", "cnn-design", "densenet",
                                              "googlenet", "nin", "resnet", "vgg")]

# Values the cells show (the book prints these shapes in its text and figures).
SHOWN = {
    ("d2l-1.0", "resnet.md"): ["(4, 3, 6, 6)", "(4, 6, 3, 3)", "(4, 32, 96, 96)"],
    ("d2l-1.0", "densenet.md"): ["(4, 23, 8, 8)", "(4, 10, 4, 4)"],
    ("d2l-0.17", "resnet.md"): ["(4, 3, 6, 6)", "(4, 6, 3, 3)"],
    ("d2l-0.17", "densenet.md"): ["(4, 23, 8, 8)", "(4, 10, 4, 4)"],
}


def test_both_trees_are_there_with_every_mxnet_cell(editions_dir):
    assert sorted(str(p.relative_to(editions_dir)) for p in editions_dir.glob("d2l-*/*.md")) == \
        sorted(SECTIONS)
    counts = {}
    for path in (editions_dir / section for section in SECTIONS):
        counts[path.parent.name] = counts.get(path.parent.name, 0) + len(
            book_cells.mxnet_cells(path))
    # 8 sections of 1.0 (the issue counts its 60 MXNet cells), 7 of 0.17.
    assert len(SECTIONS) == 15 and counts == {"d2l-1.0": 60, "d2l-0.17": 47}


def test_only_the_import_line_changes_and_magics_go(editions_dir):
    cells = book_cells.mxnet_cells(editions_dir / "d2l-1.0" / "resnet.md")
    assert cells[0].splitlines()[0] == "import gluon_modern_cnn as d2l"
    assert not any(line.lstrip().startswith("%") for cell in cells for line in cell.splitlines())
    source = (editions_dir / "d2l-1.0" / "resnet.md").read_text()
    for cell in cells[1:]:
        assert cell.strip() in source   # verbatim, tab marker aside


@pytest.mark.parametrize("section", SECTIONS, ids=[s[:-len(".md")] for s in SECTIONS])
def test_every_mxnet_cell_of_the_section_runs(section, editions_dir, fashion_mnist_root):
    path = editions_dir / section
    env = dict(os.environ, FASHION_MNIST_ROOT=str(fashion_mnist_root), PYTHONWARNINGS="ignore")
    result = subprocess.run([sys.executable, "-m", "gluon_modern_cnn.book_cells", "--short",
                             str(path)], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    n = len(book_cells.mxnet_cells(path))
    assert re.findall(r"\[cell (\d+)/\d+ ran\]", result.stdout) == [str(i) for i in
                                                                      range(1, n + 1)]
    for value in SHOWN.get((path.parent.name, path.name), []):
        assert f": {value}\n" in result.stdout
    if path.parent.name == "d2l-0.17":
        # train_ch6 prints its two lines and, returning None as the book's, shows no Out[].
        trained = re.findall(r"loss [\d.]+, train acc [\d.]+, test acc [\d.]+\n"
                             r"[\d.]+ examples/sec on cpu\(0\)\n(.*)\n", result.stdout)
        assert trained and all(line.startswith("[cell ") for line in trained)
    if any("layer_summary" in cell for cell in book_cells.mxnet_cells(path)):
        assert "output shape:\t" in result.stdout
