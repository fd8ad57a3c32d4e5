"""The book's printed outputs stored in `book.py` are really the book's."""
import re

import pytest

from gluon_modern_cnn import book


def _normalized_seed(seeds_dir, name):
    return book.normalize_whitespace((seeds_dir / name).read_text(encoding="utf-8"))


def _stored_lines():
    for sec in book.SECTIONS.values():
        for output in sec.outputs:
            for line in output.lines:
                yield sec, line
        for run in sec.trainings:
            for line in run.lines + run.parameter_lines:
                yield sec, line


@pytest.mark.parametrize("sec,line", list(_stored_lines()),
                         ids=lambda v: v.key if isinstance(v, book.Section) else v[:40])
def test_every_stored_line_occurs_in_its_seed(seeds_dir, sec, line):
    assert book.normalize_whitespace(line) in _normalized_seed(seeds_dir, sec.seed)


@pytest.mark.parametrize("key,counts", [
    ("7.1", [13]), ("7.2", [10]), ("7.3", [10]), ("7.4", [6]), ("7.6", [1, 1, 10]),
    ("7.7", [1, 1]), ("5.12", [1, 1, 18]), ("5.13", [1, 1])])
def test_trace_lengths_match_the_book(key, counts):
    assert [len(o.lines) for o in book.section(key).outputs] == counts


def _section_text(seeds_dir, sec):
    """The seed text of one section of the MXNet edition (from its heading to the next)."""
    text = (seeds_dir / sec.seed).read_text(encoding="utf-8")
    start = text.index(f" {sec.key} ")
    following = re.search(r"\n#+ 7\.\d+ [A-Z]", text[start + 10:])
    return text[start:start + 10 + following.start()] if following else text[start:]


@pytest.mark.smoke
@pytest.mark.parametrize("key", ["7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "7.7"])
def test_hyperparameters_are_those_of_the_training_cell(seeds_dir, key):
    sec = book.section(key)
    text = book.normalize_whitespace(_section_text(seeds_dir, sec))
    for run in sec.trainings:
        lr, epochs, batch, resize = (run.hyperparameters.lr, run.hyperparameters.num_epochs,
                                     run.hyperparameters.batch_size, run.hyperparameters.resize)
        assert (f"lr, num_epochs, batch_size = {lr}, {epochs}, {batch}" in text
                or (f"lr, num_epochs = {lr}, {epochs}" in text
                    and f"batch_size = {batch}" in text))
        loader = (f"load_data_fashion_mnist(batch_size, resize={resize})" if resize
                  else "load_data_fashion_mnist(batch_size)")
        assert loader in text


@pytest.mark.smoke
def test_parse_result_reads_both_formats():
    assert book.parse_result(book.training_run("7.5", "lenet_bn").lines) == {
        "loss": 0.247, "train_acc": 0.909, "test_acc": 0.814,
        "examples_per_sec": 27746.0, "device": "gpu(0)"}
    final = book.parse_result(book.training_run("5.11").lines)
    assert (final["epoch"], final["loss"], final["test_acc"]) == (5.0, 0.3033, 0.861)


def test_training_run_falls_back_to_the_sections_trained_model():
    assert book.training_run("7.2", "vgg11").model == "vgg11_small"
    assert book.training_run("7.5", "lenet_bn").model == "lenet_bn"
    with pytest.raises(ValueError, match="unknown book section '9.9'.*7.1"):
        book.training_run("9.9")


@pytest.mark.parametrize("key,model,epochs,lr", [
    ("5.11", "lenet_bn_scratch", 5, 1.0), ("7.5", "lenet_bn_scratch", 10, 1.0),
    ("5.12", "gluonbook_resnet", 5, 0.05), ("7.6", "resnet18", 10, 0.05)])
def test_reproduce_runs_each_sections_own_settings(key, model, epochs, lr):
    from gluon_modern_cnn.training.reproduce import section_settings
    settings = section_settings(book.training_run(key, model), model)
    assert (settings.num_epochs, settings.lr, settings.batch_size) == (
        epochs, lr, book.training_run(key, model).hyperparameters.batch_size)


@pytest.mark.parametrize("key", ["8.1", "8.2", "8.3", "8.4", "8.5", "8.6", "8.7", "8.8"])
def test_the_1_0_settings_are_those_of_its_training_cells(seeds_dir, key):
    from gluon_modern_cnn import book_cells
    sec = book.section(key)
    assert book.edition(key) == "1.0"
    cells = [c for c in book_cells.mxnet_cells(seeds_dir / sec.seed) if "trainer.fit(" in c]
    assert len(cells) == len(sec.trainings)
    for cell, run in zip(cells, sec.trainings):
        hp = run.hyperparameters
        assert re.search(rf"model = \w+\((arch=.*, )?lr={hp.lr}\)", cell), cell
        assert f"max_epochs={hp.num_epochs}" in cell and f"batch_size={hp.batch_size}" in cell
        resize = re.search(r"resize=\((\d+), (\d+)\)", cell)
        assert (int(resize[1]) if resize else None) == hp.resize
