"""Training curves drawn while training runs: the book's ``Animator`` (section 3.6, used by ``train_ch6``).

Where the figure goes:

* In a Jupyter kernel it is shown inline and replaced in place on every ``add``, as in the book.
* Anywhere else (a script, a terminal, CI) nothing is shown. Pass ``path=`` to have the figure written
  to a PNG or SVG file that can be opened while training runs; without a path it stays in memory
  until :meth:`Animator.save` writes it.

The figure is a ``matplotlib.figure.Figure`` drawn without pyplot, so no backend is selected or
switched: a notebook's inline backend is left alone, and a machine without a display needs nothing
(files are rendered with Agg / the SVG writer directly). IPython is imported only inside a kernel.
"""
from __future__ import annotations

import atexit
import io
import math
import os
import time
from pathlib import Path
from typing import Any, Sequence

from matplotlib.figure import Figure

from ..runtime.console import in_jupyter_kernel
from ..runtime.files import atomic_write

__all__ = ["Animator", "in_jupyter_kernel"]

_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


def _output_path(path: str | os.PathLike, overwrite: bool) -> Path:
    """Check that the figure can be written to ``path`` without destroying anything."""
    path = Path(path)
    if path.suffix.lower() not in _FORMATS:
        raise ValueError(f"cannot write a figure to {str(path)!r}: the file name must end in "
                         + ", ".join(_FORMATS))
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write a figure to {str(path)!r}: the directory "
                                f"{str(path.parent)!r} does not exist")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{str(path)!r} already exists; pass overwrite=True to replace it, "
                              "or choose another path")
    return path


def _values(v: Any) -> list | None:
    """``v`` as a list if it is a sequence of values, None if it is a single value."""
    if isinstance(v, (str, bytes)):
        raise TypeError(f"Animator.add() needs numbers or None, got {v!r}")
    try:
        return list(v)
    except TypeError:   # a number, None, or a 0-d array
        return None


def _number(v: Any) -> float | None:
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        raise TypeError(f"Animator.add() needs numbers or None, got {v!r}") from None


class Animator:
    """For plotting data in animation (section 3.6): ``add(x, y)`` appends a point to each line.

    Only the first subplot is drawn into (as in the book); the others are free in ``self.axes``.
    The legend sits to the right of the axes, where it never hides a curve, and a line holding a
    single point (a one-epoch run) shows it as a marker. The positional parameters are the book's;
    the others are keyword-only.

    Args:
        xlabel: the x axis's label; default none.
        ylabel: the y axis's label; default none.
        legend: one name per line; default none.
        xlim: the x axis's ``(low, high)``; default ``None``, matplotlib's automatic limits.
        ylim: the y axis's ``(low, high)``; default ``None``, automatic.
        xscale: the x axis's scale (default ``"linear"``; e.g. ``"log"``).
        yscale: the y axis's scale (default ``"linear"``).
        fmts: one matplotlib format per line (default the book's four).
        nrows: rows of subplots (default 1).
        ncols: columns of subplots (default 1).
        figsize: the figure's ``(width, height)`` in inches (default the book's (3.5, 2.5)).
        path: a ``.png``, ``.svg`` or ``.pdf`` file the figure is written to (atomically, so a
            viewer never sees half a file); default ``None``, kept in memory until :meth:`save`.
        overwrite: replace an existing ``path`` (default False: an existing file is refused).
        dpi: resolution, in dots per inch (default 100); a PNG is ``figsize * dpi`` pixels.
        display: show inline in a notebook; default ``None``, exactly when running in a Jupyter
            kernel.
        min_interval: the file is rewritten at most once per this many seconds (default 1.0, >= 0),
            so that drawing (tens of milliseconds) never slows training noticeably; the latest
            points are written by :meth:`flush` / :meth:`save`, at the end of a ``with`` block, and
            at the latest when the interpreter exits. A notebook display is updated on every
            ``add``, as in the book.
        title: a title above the axes (``train_ch6`` names the model and its section).

    Raises:
        ValueError: for a negative ``min_interval`` or a ``path`` of another format.
        FileNotFoundError: when ``path``'s folder does not exist.
        FileExistsError: when ``path`` exists and ``overwrite`` is false.
    """

    def __init__(self, xlabel: str | None = None, ylabel: str | None = None,
                 legend: Sequence[str] | None = None, xlim: Sequence[float] | None = None,
                 ylim: Sequence[float] | None = None, xscale: str = "linear",
                 yscale: str = "linear", fmts: Sequence[str] = ("-", "m--", "g-.", "r:"),
                 nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (3.5, 2.5), *,
                 path: str | os.PathLike | None = None, overwrite: bool = False,
                 dpi: float = 100.0, display: bool | None = None, min_interval: float = 1.0,
                 title: str | None = None):
        if min_interval < 0:
            raise ValueError(f"min_interval must be >= 0 seconds, got {min_interval}")
        self.path = _output_path(path, overwrite) if path is not None else None
        self.display = in_jupyter_kernel() if display is None else display
        self.min_interval = min_interval
        self.fmts = tuple(fmts)
        self.legend = list(legend or [])
        # A fixed-size canvas whose layout keeps the labels inside it.
        self.fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
        self.axes = list(self.fig.subplots(nrows, ncols, squeeze=False).flat)
        ax = self.axes[0]
        ax.set_xlabel(xlabel or "")
        ax.set_ylabel(ylabel or "")
        if title:
            ax.set_title(title)
        ax.set_xscale(xscale)
        ax.set_yscale(yscale)
        if xlim is not None:
            ax.set_xlim(xlim)
        if ylim is not None:
            ax.set_ylim(ylim)
        ax.grid(True)   # not grid(): that toggles, and would hide a grid a style turned on
        self.X: list[list[float]] | None = None   # the book's names: one list per line
        self.Y: list[list[float]] | None = None
        self._lines: list[Any] = []         # one Line2D per line, created by the first add
        self._markerless: list[bool] = []   # lines whose format draws no marker
        self._handle: Any = None            # the notebook display being updated in place
        self._last_drawn = -math.inf        # time.monotonic() of the last write

    def add(self, x: Any, y: Any) -> None:
        """Append one point per line: ``y`` is a value or a list (one per line, None skips that
        line); ``x`` is the shared x value or a list of them."""
        ys = _values(y)
        ys = [y] if ys is None else ys
        xs = _values(x)
        xs = [x] * len(ys) if xs is None else xs
        if len(xs) != len(ys):
            raise ValueError(f"Animator.add() got {len(xs)} x values for {len(ys)} y values")
        points = [(_number(a), _number(b)) for a, b in zip(xs, ys)]   # refuse bad input up front
        if self.X is None:
            if len(ys) > len(self.fmts):
                raise ValueError(f"Animator.add() got {len(ys)} lines but only {len(self.fmts)} "
                                 "line formats; pass more fmts=")
            self.X, self.Y = [[] for _ in ys], [[] for _ in ys]
            self._lines = [self.axes[0].plot([], [], fmt)[0] for fmt, _ in zip(self.fmts, ys)]
            self._markerless = [line.get_marker() in ("None", "", " ") for line in self._lines]
            if self.legend:  # outside the axes, right of them: the curves stay visible
                self.axes[0].legend(self._lines, self.legend, loc="upper left",
                                    bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
        elif len(ys) != len(self.X):
            raise ValueError(f"Animator.add() got {len(ys)} y values; the first call had "
                             f"{len(self.X)} (one per line)")
        for xs_line, ys_line, (a, b) in zip(self.X, self.Y, points):
            if a is not None and b is not None:
                xs_line.append(a)
                ys_line.append(b)
        if self.display:
            self._draw()
            self._show()
        if self.path is not None:
            if time.monotonic() - self._last_drawn >= self.min_interval:
                self.flush()
            else:
                _UNWRITTEN.add(self)

    def flush(self) -> None:
        """Draw every point added so far and write it to ``path`` now (if there is a path)."""
        self._draw()
        if self.path is not None:
            self._write(self.path)
            self._last_drawn = time.monotonic()
        _UNWRITTEN.discard(self)

    def save(self, path: str | os.PathLike | None = None, *, overwrite: bool = False) -> Path:
        """Write the figure to ``path`` (default: the Animator's own ``path``) and return the path."""
        if path is None:
            if self.path is None:
                raise ValueError("Animator.save() needs a path: this Animator was made without one")
            self.flush()
            return self.path
        target = Path(path)
        if target != self.path:
            target = _output_path(target, overwrite)
        self._draw()
        self._write(target)
        return target

    def __enter__(self) -> Animator:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.flush()

    def _draw(self) -> None:
        # Update the existing lines rather than clearing and re-plotting the axes (the book's way):
        # the same picture for less work. Fixed limits (xlim/ylim) switch autoscaling off.
        for line, markerless, xs, ys in zip(self._lines, self._markerless, self.X or [],
                                            self.Y or []):
            line.set_data(xs, ys)
            if markerless:  # a single point draws no segment: a dot until a second one arrives
                line.set_marker("o" if len(xs) == 1 else "None")
        self.axes[0].relim()
        self.axes[0].autoscale_view()

    def _render(self, fmt: str) -> bytes:
        buffer = io.BytesIO()
        # No date in the metadata: the same curves give the same bytes.
        metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt)
        self.fig.savefig(buffer, format=fmt, metadata=metadata)
        return buffer.getvalue()

    def _write(self, path: Path) -> None:
        # Written beside the target, then renamed: a viewer reloading it never sees half of it.
        data = self._render(_FORMATS[path.suffix.lower()])
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))

    def _show(self) -> None:
        try:
            from IPython import display as ipython_display   # only reached inside a kernel
        except ImportError as err:
            raise ImportError("Animator(display=True) needs IPython (pip install ipython); "
                              "outside a notebook pass path= instead") from err
        image = ipython_display.SVG(self._render("svg"))
        if self._handle is None:
            self._handle = ipython_display.display(image, display_id=True)
        else:
            self._handle.update(image)


# Animators whose latest points are not in their file yet, written when the interpreter exits. Strong
# references: a training function's local Animator must survive the function until it is written.
_UNWRITTEN: set[Animator] = set()


@atexit.register
def _flush_unwritten() -> None:
    for animator in list(_UNWRITTEN):
        animator.flush()
