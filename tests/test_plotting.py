"""Animator: the book's live training curves, inline in a notebook and as a file when headless."""
import struct
import subprocess
import sys
import textwrap
import time
import types
import xml.etree.ElementTree as ET

import matplotlib
import matplotlib.image
import pytest

from gluon_modern_cnn.training.plotting import Animator

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LEGEND = ["train loss", "train acc", "test acc"]


def png_size(data):
    """(width, height) from the PNG header, after checking the signature and the IHDR chunk."""
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def train_like(animator, epochs=3, adds_per_epoch=5):
    """Feed points the way train_ch6 does: batch points for two lines, then the epoch's test point."""
    for epoch in range(epochs):
        for i in range(adds_per_epoch):
            x = epoch + (i + 1) / adds_per_epoch
            animator.add(x, (2.0 / (1 + x), 0.5 + x / 10, None))
        animator.add(epoch + 1, (None, None, 0.45 + epoch / 10))


@pytest.mark.parametrize("figsize, dpi", [((3.5, 2.5), 100), ((4, 3), 80)])
def test_headless_png_is_valid_and_has_the_figure_size(tmp_path, figsize, dpi):
    path = tmp_path / "curves.png"
    with Animator(xlabel="epoch", xlim=[1, 3], legend=LEGEND, figsize=figsize, path=path,
                  dpi=dpi, display=False) as animator:
        train_like(animator)
    assert png_size(path.read_bytes()) == (round(figsize[0] * dpi), round(figsize[1] * dpi))
    pixels = matplotlib.image.imread(path)   # decodes the whole image, not only the header
    assert pixels.shape[:2] == (round(figsize[1] * dpi), round(figsize[0] * dpi))
    assert pixels.min() < pixels.max()       # something is drawn
    assert not list(tmp_path.glob(".*partial"))   # no temporary file left behind


def test_headless_svg_is_valid_xml_with_labels_and_legend(tmp_path):
    path = tmp_path / "curves.svg"
    with Animator(xlabel="epoch", legend=LEGEND, path=path, display=False) as animator:
        train_like(animator)
    text = path.read_text()
    root = ET.fromstring(text)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert (root.get("width"), root.get("height")) == ("252pt", "180pt")   # 3.5 x 2.5 in at 72 pt/in
    for label in ["epoch", *LEGEND]:
        assert f"<!-- {label} -->" in text


def test_none_values_are_skipped_per_line():
    animator = Animator(legend=LEGEND, display=False)
    animator.add(1, (0.9, 0.3, None))
    animator.add(1.5, (0.7, None, None))
    animator.add(2, (None, None, 0.5))
    assert animator.X == [[1.0, 1.5], [1.0], [2.0]]
    assert animator.Y == [[0.9, 0.7], [0.3], [0.5]]
    animator.flush()
    lines = animator.axes[0].get_lines()
    assert [list(line.get_xdata()) for line in lines] == animator.X
    assert [list(line.get_ydata()) for line in lines] == animator.Y
    assert [line.get_linestyle() for line in lines] == ["-", "--", "-."]   # the book's fmts


def test_scalar_y_and_list_x():
    animator = Animator(display=False)
    animator.add(1, 0.5)
    animator.add(2, 0.25)
    assert (animator.X, animator.Y) == ([[1.0, 2.0]], [[0.5, 0.25]])
    two = Animator(display=False)
    two.add([1, 2], [10, 20])
    assert (two.X, two.Y) == ([[1.0], [2.0]], [[10.0], [20.0]])


def test_legend_axes_labels_and_limits():
    animator = Animator(xlabel="epoch", ylabel="loss", legend=LEGEND, xlim=[1, 10], ylim=[0.01, 1],
                        yscale="log", display=False)
    assert animator.axes[0].get_legend() is None   # nothing to label until lines exist
    train_like(animator)
    animator.flush()
    ax = animator.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == LEGEND
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_yscale()) == ("epoch", "loss", "log")
    assert ax.get_xlim() == (1, 10)
    assert Animator(display=False).axes[0].get_legend() is None


def test_several_subplots_draw_into_the_first():
    animator = Animator(nrows=2, ncols=2, display=False)
    animator.add(1, 0.5)
    assert len(animator.axes) == 4
    assert len(animator.axes[0].get_lines()) == 1
    assert all(not ax.get_lines() for ax in animator.axes[1:])


@pytest.mark.parametrize("first, second, error, message", [
    ((1, (0.5, 0.6)), (2, (0.5,)), ValueError, "got 1 y values; the first call had 2"),
    ((1, (0.5, 0.6)), ([1, 2, 3], (0.5, 0.6)), ValueError, "got 3 x values for 2 y values"),
    ((1, 0.5), (2, "0.4"), TypeError, "needs numbers or None"),
    ((1, 0.5), (2, [object()]), TypeError, "needs numbers or None"),
    ((1, (0.5, 0.6)), (2, (0.4, "x")), TypeError, "needs numbers or None"),
])
def test_bad_points_are_refused(first, second, error, message):
    animator = Animator(display=False)
    animator.add(*first)
    before = (repr(animator.X), repr(animator.Y))
    with pytest.raises(error, match=message):
        animator.add(*second)
    assert (repr(animator.X), repr(animator.Y)) == before   # nothing half-added


def test_more_lines_than_formats_is_refused():
    with pytest.raises(ValueError, match="got 3 lines but only 2 line formats"):
        Animator(fmts=("-", "r:"), display=False).add(1, (1, 2, 3))


def test_existing_files_are_never_overwritten_silently(tmp_path):
    path = tmp_path / "mine.png"
    path.write_bytes(b"a user's file")
    with pytest.raises(FileExistsError, match="already exists; pass overwrite=True"):
        Animator(path=path, display=False)
    assert path.read_bytes() == b"a user's file"
    animator = Animator(display=False)
    animator.add(1, 0.5)
    with pytest.raises(FileExistsError):
        animator.save(path)
    assert path.read_bytes() == b"a user's file"
    assert animator.save(path, overwrite=True) == path
    assert png_size(path.read_bytes()) == (350, 250)


@pytest.mark.parametrize("name, error, message", [
    ("curves.jpg", ValueError, "must end in .png, .svg, .pdf"),
    ("missing/curves.png", FileNotFoundError, "does not exist"),
])
def test_bad_paths_are_refused(tmp_path, name, error, message):
    with pytest.raises(error, match=message):
        Animator(path=tmp_path / name, display=False)


def test_save_without_any_path_is_refused():
    with pytest.raises(ValueError, match="needs a path"):
        Animator(display=False).save()


def test_headless_without_path_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    animator = Animator(display=False)
    train_like(animator)
    animator.flush()
    assert list(tmp_path.iterdir()) == []


def test_file_writes_are_throttled_and_add_is_cheap(tmp_path):
    path = tmp_path / "curves.png"
    animator = Animator(legend=LEGEND, path=path, display=False, min_interval=3600)
    animator.add(0.2, (1.0, 0.1, None))
    first = path.read_bytes()   # the first point is written at once, so the file can be opened
    start = time.perf_counter()
    for i in range(200):
        animator.add(0.4 + i / 100, (1.0 / (i + 2), 0.1 + i / 400, None))
    per_add = (time.perf_counter() - start) / 200
    assert per_add < 2e-3, f"add() took {per_add * 1e3:.2f} ms"   # drawing a figure takes ~50 ms
    assert path.read_bytes() == first
    animator.flush()
    assert path.read_bytes() != first


def run_python(code, tmp_path, env_path=None):
    env = None
    if env_path is not None:
        import os
        env = {**os.environ, "PYTHONPATH": f"{env_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    return done


def test_unwritten_points_are_written_at_exit_even_after_the_animator_is_dropped(tmp_path):
    run_python("""
        import gc
        from gluon_modern_cnn.training.plotting import Animator

        def train():   # like train_ch6: the Animator is local and never flushed
            animator = Animator(legend=["a"], path="late.png", display=False, min_interval=3600)
            animator.add(1, 0.5)
            animator.add(2, 0.25)

        train()
        gc.collect()
    """, tmp_path)
    expected = Animator(legend=["a"], path=tmp_path / "expected.png", display=False)
    expected.add(1, 0.5)
    expected.add(2, 0.25)
    expected.flush()
    assert (tmp_path / "late.png").read_bytes() == (tmp_path / "expected.png").read_bytes()


def test_headless_use_imports_neither_ipython_nor_pyplot(tmp_path):
    # An IPython that fails on import: if plotting touched it outside a kernel, this would break.
    (tmp_path / "IPython").mkdir()
    (tmp_path / "IPython" / "__init__.py").write_text(
        "raise ImportError('IPython was imported outside a kernel')\n")
    done = run_python("""
        import sys
        import matplotlib
        backend = matplotlib.rcParams._get_backend_or_none()
        from gluon_modern_cnn.training.plotting import Animator
        with Animator(legend=["a"], path="curves.svg") as animator:
            animator.add(1, 0.5)
        assert "IPython" not in sys.modules, "IPython imported"
        assert "matplotlib.pyplot" not in sys.modules, "pyplot imported"
        assert matplotlib.rcParams._get_backend_or_none() == backend, "backend changed"
        print("ok")
    """, tmp_path, env_path=tmp_path)
    assert done.stdout == "ok\n"
    assert (tmp_path / "curves.svg").stat().st_size > 0


@pytest.fixture
def fake_kernel(monkeypatch):
    """A stand-in for a Jupyter kernel's IPython: records what is displayed."""
    shown = []

    class Handle:
        def update(self, obj):
            shown.append(("update", obj))

    def display(obj, display_id=False):
        shown.append(("display", obj))
        assert display_id is True
        return Handle()

    display_module = types.ModuleType("IPython.display")
    display_module.display = display
    display_module.SVG = lambda data: types.SimpleNamespace(data=data)
    ipython = types.ModuleType("IPython")
    ipython.display = display_module
    ipython.get_ipython = lambda: types.SimpleNamespace(kernel=object())
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display_module)
    return shown


def test_in_a_kernel_the_figure_is_shown_inline_and_replaced(fake_kernel):
    backend = matplotlib.rcParams._get_backend_or_none()
    animator = Animator(legend=LEGEND)   # display is detected, not passed
    assert animator.display is True
    train_like(animator, epochs=2)
    kinds = [kind for kind, _ in fake_kernel]
    assert kinds == ["display"] + ["update"] * 11   # one output, replaced on every add
    first, last = fake_kernel[0][1].data, fake_kernel[-1][1].data
    assert ET.fromstring(last).tag == "{http://www.w3.org/2000/svg}svg"
    assert first != last
    assert matplotlib.rcParams._get_backend_or_none() == backend   # the inline backend is untouched


def test_outside_a_kernel_nothing_is_displayed(fake_kernel, monkeypatch):
    # IPython imported in a plain terminal session: no kernel, so no inline display.
    monkeypatch.setattr(sys.modules["IPython"], "get_ipython", lambda: types.SimpleNamespace())
    animator = Animator()
    animator.add(1, 0.5)
    assert animator.display is False and fake_kernel == []


def test_negative_interval_is_refused():
    with pytest.raises(ValueError, match="min_interval must be >= 0"):
        Animator(min_interval=-1)


@pytest.mark.parametrize("style_grid", [False, True])
def test_grid_is_on_whatever_the_style(style_grid):
    with matplotlib.rc_context({"axes.grid": style_grid}):
        ax = Animator(display=False).axes[0]
    assert all(tick.gridline.get_visible() for tick in ax.xaxis.get_major_ticks())
