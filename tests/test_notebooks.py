"""One section of each edition as a real notebook in a Jupyter kernel (nbclient): the book's cells
run in order, the training cell shows the inline figure and nothing the book does not show."""
import pytest

nbclient = pytest.importorskip("nbclient")   # the test extra installs it

from gluon_modern_cnn import book_cells  # noqa: E402



def _run(path, monkeypatch, fashion_mnist_root):
    monkeypatch.setenv("FASHION_MNIST_ROOT", str(fashion_mnist_root))
    monkeypatch.setenv("PYTHONWARNINGS", "ignore")
    nb = book_cells.notebook(path, short=True)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3").execute()
    return nb.cells[1:]   # the book's cells, after the setup cell


def _kinds(cell):
    return [o["output_type"] + (":" + o.get("name", "") if o["output_type"] == "stream" else "")
            for o in cell.outputs]


def _training_cells(cells, call):
    return [cell for cell in cells if call in cell.source]


def test_the_0_17_batch_norm_section_as_a_notebook(monkeypatch, editions_dir, fashion_mnist_root):
    cells = _run(editions_dir / "d2l-0.17" / "batch-norm.md", monkeypatch, fashion_mnist_root)
    trained = _training_cells(cells, "d2l.train_ch6(")
    assert len(trained) == 2
    for cell in trained:
        # The figure (inline, updated in place) and train_ch6's two lines; no Out[] (None).
        assert _kinds(cell) == ["display_data", "stream:stdout"], cell.outputs
        assert "image/svg+xml" in cell.outputs[0]["data"]
        lines = cell.outputs[1]["text"].splitlines()
        assert len(lines) == 2 and lines[0].startswith("loss ") and "examples/sec on" in lines[1]
    assert any(o["output_type"] == "execute_result" for c in cells for o in c.outputs)


def test_the_1_0_batch_norm_section_as_a_notebook(monkeypatch, editions_dir, fashion_mnist_root):
    cells = _run(editions_dir / "d2l-1.0" / "batch-norm.md", monkeypatch, fashion_mnist_root)
    trained = _training_cells(cells, "trainer.fit(")
    assert len(trained) == 2
    for cell in trained:
        # Only the progress board, drawn inline: Trainer.fit prints and returns nothing.
        assert _kinds(cell) == ["display_data"], cell.outputs
        svg = cell.outputs[0]["data"]["image/svg+xml"]
        assert "train_loss" in svg and "val_acc" in svg
