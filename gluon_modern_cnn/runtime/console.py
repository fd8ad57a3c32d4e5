"""Where the output goes: a terminal (a progress bar can redraw itself), a Jupyter kernel (the
book's figures are the progress) or a log file. Found without importing IPython."""
from __future__ import annotations

import sys
from typing import TextIO

__all__ = ["in_jupyter_kernel", "is_interactive"]


def in_jupyter_kernel() -> bool:
    """Whether this process is a Jupyter (IPython) kernel, found without importing IPython."""
    ipython = sys.modules.get("IPython")   # a kernel has always imported it already
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def is_interactive(file: TextIO) -> bool:
    """Whether ``file`` is a terminal, where a redrawn bar is seen."""
    try:
        return file.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
