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

__all__ = ["restore_numpy_aliases", "discard_half_imported", "import_mxnet", "legacy_mode",
           "activate_np", "np_thread", "mxnet_error_summary", "usable_cores", "default_threads",
           "threads_setting"]

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


# Packages whose failed import leaves submodules behind that a second import would reuse half-built.
_REIMPORTABLE = ("mxnet", "gluoncv")


def discard_half_imported(package: str) -> bool:
    """Forget a package whose import failed half-way, so that it can be imported again.

    ``import mxnet`` on numpy >= 1.24 without the aliases fails deep inside MXNet's ``__init__``:
    Python drops ``mxnet`` itself from ``sys.modules`` but keeps the submodules that loaded before
    the failure, and a second import would reuse them and leave ``mxnet.util`` and others missing.

    Args:
        package: the top-level package name (e.g. ``"mxnet"``); nothing is discarded while the
            package itself is still in ``sys.modules``.

    Returns:
        Whether any of its submodules was discarded.
    """
    if package in sys.modules:
        return False
    stale = [name for name in sys.modules if name.startswith(package + ".")]
    for name in stale:
        del sys.modules[name]
    return bool(stale)


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
    elif "mxnet" in sys.modules or "mxnet.base" in sys.modules:
        # mxnet.base outlives a failed `import mxnet`: its library loaded and read the variable.
        _threads_note = (f"{THREADS_ENV_VAR} unset and MXNet's library was loaded before "
                         f"gluon_modern_cnn (by an earlier `import mxnet`, even a failed one): "
                         f"MXNet uses half the processors; set {THREADS_ENV_VAR}={count}, or "
                         f"restart and import gluon_modern_cnn first")
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
    """Import and return the ``mxnet`` module, first making it importable on numpy 1.24 to 1.26.

    Works in any order with ``import mxnet``: when MXNet was imported first and succeeded (numpy
    1.23, or the aliases restored by hand) that module is used; when its import failed half-way
    (numpy >= 1.24 in a notebook's first cell), the leftovers are discarded and MXNet is imported
    again, cleanly; when even that fails, one message says what happened and what to do. Before
    MXNet loads, ``OMP_NUM_THREADS`` is set to the usable cores unless the user set it.
    """
    restore_numpy_aliases()
    default_threads()
    repaired = [name for name in _REIMPORTABLE if discard_half_imported(name)]
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
    except Exception as err:
        if not repaired:
            raise
        raise ImportError(
            f"MXNet was imported before gluon_modern_cnn and its import failed half-way; importing "
            f"it again failed too ({type(err).__name__}: {err}). Restart the Python process (in "
            f"Jupyter: Kernel > Restart) and import gluon_modern_cnn before mxnet, or install "
            f"numpy 1.23.5, which MXNet 1.9.1 imports without help.") from err
    if not hasattr(mxnet, "util"):
        raise ImportError(
            "MXNet is only half-imported in this process (an earlier `import mxnet` failed and "
            "something kept its broken module). Restart the Python process (in Jupyter: Kernel > "
            "Restart) and import gluon_modern_cnn before mxnet.")
    if not mxnet.__version__.startswith("1.9."):
        warnings.warn(f"gluon_modern_cnn is tested with MXNet 1.9.1; found {mxnet.__version__}.",
                      RuntimeWarning, stacklevel=2)
    return mxnet


_EDITION_SWITCH = (
    "This thread runs {mode} semantics; {hint} The editions: `import gluon_modern_cnn as d2l` "
    "(0.17 and 1.0, numpy semantics) or `import gluon_modern_cnn.gluonbook as gb` (the older "
    "gluonbook edition, `nd` semantics for the importing thread); `with "
    "gluon_modern_cnn.legacy_mode():` runs `nd` code inside a numpy-mode program.")


def explain_array_mode_errors() -> None:
    """Make MXNet's "numpy operator received a legacy ndarray" (and reverse) errors name the
    book edition each kind of array belongs to and how to switch (idempotent)."""
    mx = import_mxnet()
    to_np = ("numpy (`npx.set_np()`)",
             "it got an `mx.nd` array (the older edition's), which needs `nd` semantics: convert "
             "it with `.as_np_ndarray()` or run that code under the older edition's switch.")
    to_nd = ("legacy `nd`",
             "it got an `mx.np` array (the 0.17/1.0 editions'), which needs numpy semantics: "
             "convert it with `.as_nd_ndarray()` or run that code with numpy semantics.")
    # Generated operator functions look these names up in their register module's globals, for
    # arrays (ndarray.register) and for the symbols of deferred shape inference (symbol.register).
    checks = [(mx.ndarray.register, "_verify_all_np_ndarrays", to_np),
              (mx.ndarray.register, "_verify_all_legacy_ndarrays", to_nd),
              (mx.symbol.register, "_verify_np_symbol", to_np),
              (mx.symbol.register, "_verify_legacy_symbol", to_nd)]
    for module, name, (mode, hint) in checks:
        verify = getattr(module, name)
        if getattr(verify, "_explains_editions", False):
            continue

        def check(op_name, func_name, *args, _verify=verify, _mode=mode, _hint=hint):
            try:
                _verify(op_name, func_name, *args)
            except TypeError:
                raise TypeError(f"`{func_name}` got an array of the other book edition. "
                                + _EDITION_SWITCH.format(mode=_mode, hint=_hint)) from None
        check._explains_editions = True
        setattr(module, name, check)


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
    """Decorate a function that runs in another thread so that it sees ``npx.set_np()`` semantics.

    Args:
        func: the function; the wrapper activates numpy semantics before calling it when it runs
            outside the main thread (``npx.set_np()`` holds per thread).
    """
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            activate_np()
        return func(*args, **kwargs)
    return wrapper


def mxnet_error_summary(err: BaseException) -> str:
    """The one informative line of an MXNetError (its text starts with a C++ traceback).

    Args:
        err: the exception; its first ``Check failed``/``MXNetError:`` line, else its last line,
            else its type name, is returned.
    """
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        if "Check failed" in line or "MXNetError:" in line:
            return line.split("MXNetError:", 1)[-1].strip()
    return lines[-1] if lines else type(err).__name__
