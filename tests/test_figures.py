"""Training curves a person can read: a title naming the model and its section, labelled axes, the
legend outside the curves, and a visible point even for a one-epoch run. Read back from the files."""
import re
import xml.etree.ElementTree as ET

import matplotlib.image
import mxnet as mx

import gluon_modern_cnn as d2l
from gluon_modern_cnn.training.experiment import resolve_settings, train_model

from conftest import synthetic_loaders as _synthetic

SVG = "{http://www.w3.org/2000/svg}"


def _svg_groups(path):
    """{group id: element} of a matplotlib SVG."""
    return {g.get("id"): g for g in ET.parse(path).getroot().iter(f"{SVG}g") if g.get("id")}


def _texts(path):
    """The strings matplotlib drew, from the comment it writes before each text's glyphs."""
    return re.findall(r"<!-- (.*?) -->", path.read_text())


def _box(group):
    """(x0, y0, x1, y1) of the first path in ``group``."""
    d = next(group.iter(f"{SVG}path")).get("d")
    numbers = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", d)]
    xs, ys = numbers[0::2], numbers[1::2]
    return min(xs), min(ys), max(xs), max(ys)


def _has_dot(path):
    """Whether a circle marker is drawn (tick marks are straight; a circle is drawn with curves)."""
    root = ET.parse(path).getroot()
    return any(" C " in p.get("d", "") for p in root.iter(f"{SVG}path")
               if (p.get("id") or "").startswith("m"))




def _train_ch6_figure(tmp_path, num_epochs):
    figure = tmp_path / f"curve-{num_epochs}.svg"
    net = d2l.get_model("lenet_bn_hybrid")
    d2l.train_ch6(net, *_synthetic(), num_epochs, 0.1, mx.cpu(), figure=str(figure))
    return figure


def test_train_ch6_figure_names_the_model_labels_its_axes_and_keeps_the_legend_outside(tmp_path):
    figure = _train_ch6_figure(tmp_path, 3)
    texts = _texts(figure)
    assert "lenet_bn_hybrid, section 7.5" in texts          # the title
    assert "epoch" in texts and "loss, accuracy" in texts    # both axes labelled
    assert {"train loss", "train acc", "test acc"} <= set(texts)
    groups = _svg_groups(figure)
    axes = _box(groups["patch_2"])           # the axes' background
    legend = _box(groups["legend_1"])        # the legend's frame
    assert legend[0] > axes[2], (legend, axes)   # right of the axes: it covers no curve
    assert not _has_dot(figure)  # lines of several points are lines


def test_a_one_epoch_run_draws_its_test_accuracy_as_a_point(tmp_path):
    figure = _train_ch6_figure(tmp_path, 1)
    assert _has_dot(figure)


def test_the_train_commands_curve_is_large_enough_to_read(tmp_path, capsys):
    settings = resolve_settings("lenet_bn_hybrid", num_epochs=1, batch_size=16)
    train_model(settings, device=mx.cpu(), out=tmp_path, data=_synthetic(), progress=False)
    height, width = matplotlib.image.imread(tmp_path / "curve.png").shape[:2]
    assert (width, height) == (720, 432)


def test_the_inline_figure_stays_the_books():
    # Without a file (a notebook's inline plot) train_ch6 draws the book's figure: no title and
    # no y label of the package's own, whatever the network.
    from gluon_modern_cnn.training import book_animator
    animator = book_animator(3, title="Sequential")
    ax = animator.axes[0]
    assert ax.get_title() == "" and ax.get_ylabel() == "" and ax.get_xlabel() == "epoch"
