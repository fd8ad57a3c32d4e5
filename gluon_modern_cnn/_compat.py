"""Make MXNet 1.9.1 usable on today's numpy and fast by default; switch numpy and legacy semantics.

MXNet 1.9.1 (the last 1.x release) still refers to ``numpy.bool`` and ``numpy.int``, aliases that
numpy 1.24 removed. Python 3.12 has no numpy wheel older than 1.26, so without this shim MXNet cannot
be imported there at all. The shim only adds the builtin types back under their old names; it changes
nothing numpy itself computes.

MXNet 1.9 runs its operators on half the processors unless ``OMP_NUM_THREADS`` is set (it assumes
two hyper-threads per core), so on a machine without SMT half the cores stay idle. Before MXNet
loads, the package sets ``OMP_NUM_THREADS`` to the cores this process may use when the user has not
set it (``default_threads``); ``threads_setting()`` says what was decided and why.
"""
from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import warnings
from typing import Callable, Iterator, TypeVar

import numpy

__all__ = ["restore_numpy_aliases", "import_mxnet", "legacy_mode", "activate_np", "np_thread",
           "mxnet_error_summary", "usable_cores", "default_threads", "threads_setting"]

# The aliases numpy 1.24 removed (all deprecated since 1.20), mapped to what they always meant.
_REMOVED_NUMPY_ALIASES = {"bool": bool, "int": int, "float": float, "complex": complex,
                          "object": object, "str": str}

_INSTALL_HINT = ("Install it with `pip install 'gluon-modern-cnn[cpu]'` (CPU wheel) or "
                 "`pip install 'gluon-modern-cnn[gpu]'` (CUDA 11.2 wheel, compute capability 5.0 to 8.6).")


def restore_numpy_aliases() -> None:
    """Put back ``numpy.bool``, ``numpy.int``, ... where numpy >= 1.24 removed them (idempotent)."""
    for name, builtin in _REMOVED_NUMPY_ALIASES.items():
        if name not in vars(numpy):
            setattr(numpy, name, builtin)


THREADS_ENV_VAR = "OMP_NUM_THREADS"
# Set beside OMP_NUM_THREADS when the package chose it, so that child processes (benchmark workers,
# cluster workers), which inherit both, still report the value as the package's default.
_DEFAULTED_ENV_VAR = "GLUON_MODERN_CNN_DEFAULT_OMP_NUM_THREADS"
_threads_note = ""


def usable_cores() -> int:
    """The number of cores this process may run on (its CPU affinity, e.g. under taskset or a
    container's cpuset), else the machine's processor count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no sched_getaffinity
        return os.cpu_count() or 1


def default_threads() -> str:
    """Set ``OMP_NUM_THREADS`` to ``usable_cores()`` if the user has not set it; effective only
    before MXNet loads (it reads the variable once). Returns the one-line note ``threads_setting``
    reports."""
    global _threads_note
    value = os.environ.get(THREADS_ENV_VAR, "").strip()
    count = usable_cores()
    cores = f"{count} usable core" + ("s" if count != 1 else "")
    if value and os.environ.get(_DEFAULTED_ENV_VAR) == value:
        value = ""  # inherited from a parent process where the package set it: the user did not
    if value:
        _threads_note = f"{THREADS_ENV_VAR}={value}, set by you ({cores})"
    elif "mxnet" in sys.modules:
        _threads_note = (f"{THREADS_ENV_VAR} unset and MXNet was imported before gluon_modern_cnn: "
                         f"MXNet uses half the processors; set {THREADS_ENV_VAR}={count} or import "
                         f"gluon_modern_cnn first")
    else:
        os.environ[THREADS_ENV_VAR] = os.environ[_DEFAULTED_ENV_VAR] = str(count)
        _threads_note = (f"{THREADS_ENV_VAR}={count}, set by gluon_modern_cnn to the {cores} "
                         f"(MXNet's own default is half the processors); set it yourself to "
                         f"override")
    return _threads_note


def threads_setting() -> str:
    """What ``OMP_NUM_THREADS`` is and who set it, one line (the ``devices`` and ``bench`` output)."""
    return _threads_note or default_threads()


@functools.lru_cache(maxsize=None)
def import_mxnet():
    """Import and return the ``mxnet`` module, first making it importable on numpy 1.24 to 1.26 and
    giving it one OpenMP thread per usable core unless ``OMP_NUM_THREADS`` says otherwise."""
    restore_numpy_aliases()
    default_threads()
    try:
        with warnings.catch_warnings():
            # MXNet's own import trips deprecations users cannot act on: numpy 1.25+ warns that
            # `np.bool` will one day mean `np.bool_`, numpy that its financial functions are gone,
            # setuptools that distutils' LooseVersion is deprecated.
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            import mxnet
    except ImportError as err:
        raise ImportError(f"gluon_modern_cnn needs MXNet 1.9.1, which could not be imported ({err}). "
                          + _INSTALL_HINT) from err
    if not mxnet.__version__.startswith("1.9."):
        warnings.warn(f"gluon_modern_cnn is tested with MXNet 1.9.1; found {mxnet.__version__}.",
                      RuntimeWarning, stacklevel=2)
    return mxnet


def activate_np() -> None:
    """Turn on ``npx.set_np()`` semantics for the calling thread (MXNet keeps them per thread)."""
    mx = import_mxnet()
    if not (mx.util.is_np_array() and mx.util.is_np_shape()):
        mx.npx.set_np()


@contextlib.contextmanager
def legacy_mode() -> Iterator[None]:
    """Run legacy ``mx.nd`` / ``mx.sym`` code (for example gluoncv's model zoo) inside a scope.

    Inside the ``with`` block numpy semantics are off for the current thread; they are restored on
    exit, also when the block raises. Arrays crossing the boundary convert with ``.as_nd_ndarray()``
    (numpy -> legacy) and ``.as_np_ndarray()`` (legacy -> numpy).
    """
    mx = import_mxnet()
    with mx.util.np_array(False), mx.util.np_shape(False):
        yield


T = TypeVar("T")


def np_thread(func: Callable[..., T]) -> Callable[..., T]:
    """Decorate a function that runs in another thread so that it sees ``npx.set_np()`` semantics."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            activate_np()
        return func(*args, **kwargs)
    return wrapper


def mxnet_error_summary(err: BaseException) -> str:
    """The one informative line of an MXNetError (its text starts with a C++ traceback)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        if "Check failed" in line or "MXNetError:" in line:
            return line.split("MXNetError:", 1)[-1].strip()
    return lines[-1] if lines else type(err).__name__
