"""``import mxnet`` (and ``from mxnet import np, npx``, ``import gluoncv``) in any order relative to
the package, each order in a fresh interpreter as a script or a notebook's first cell would run it."""
import subprocess
import sys
import textwrap

import numpy
import pytest

NUMPY_WITHOUT_ALIASES = tuple(int(v) for v in numpy.__version__.split(".")[:2]) >= (1, 24)

# After the imports, the package must work: numpy semantics on, a book model runs, and gluoncv's
# legacy model zoo runs inside legacy_mode.
USE = """
import mxnet as mx
from mxnet import np, npx
import gluoncv
import gluon_modern_cnn as d2l
assert mx.util.is_np_array() and mx.util.is_np_shape()
net = d2l.get_model("resnet18")
net.initialize()
assert net(np.ones((1, 1, 96, 96))).shape == (1, 10)
with d2l.legacy_mode():
    zoo = gluoncv.model_zoo.get_model("resnet18_v1")
    zoo.initialize()
    assert zoo(mx.nd.ones((1, 3, 32, 32))).shape == (1, 1000)
print("OK")
"""


def _run(first: str, then: str = "") -> subprocess.CompletedProcess:
    code = textwrap.dedent(first) + then
    return subprocess.run([sys.executable, "-W", "ignore", "-c", code],
                          capture_output=True, text=True, timeout=300)


def test_the_package_first_then_mxnet_and_gluoncv():
    result = _run("import gluon_modern_cnn\n", USE)
    assert result.stdout.strip().endswith("OK"), result.stderr[-2000:]


def test_mxnet_first_when_its_import_succeeded():
    # What numpy 1.23 gives by itself, and numpy 1.24+ after restoring the aliases by hand.
    result = _run("""
        import numpy
        for name, kind in dict(bool=bool, int=int, float=float, complex=complex,
                               object=object, str=str).items():
            if name not in vars(numpy):
                setattr(numpy, name, kind)
        import mxnet
        from mxnet import np, npx
        import gluoncv
        """, USE)
    assert result.stdout.strip().endswith("OK"), result.stderr[-2000:]


def test_mxnet_first_when_its_import_failed_half_way_is_repaired_by_the_package():
    # A notebook's first cell `import mxnet` on numpy >= 1.24 fails inside MXNet; importing the
    # package afterwards discards the half-imported modules and imports MXNet cleanly.
    result = _run("""
        failed = []
        for name in ("mxnet", "gluoncv"):
            try:
                __import__(name)
            except AttributeError as err:
                failed.append(name)
        print("failed:", failed)
        import gluon_modern_cnn
        """, USE)
    assert result.stdout.strip().endswith("OK"), result.stderr[-2000:]
    expected = "['mxnet', 'gluoncv']" if NUMPY_WITHOUT_ALIASES else "[]"
    assert f"failed: {expected}" in result.stdout


def test_after_an_earlier_import_of_mxnet_the_threads_note_says_what_mxnet_really_uses():
    # MXNet's library reads OMP_NUM_THREADS once, when an `import mxnet` loads it, even one that
    # then fails half-way: the package must not claim its own default took effect.
    import os
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "GLUON_MODERN_CNN_DEFAULT_OMP_NUM_THREADS")}
    code = textwrap.dedent("""
        try:
            import mxnet
        except AttributeError:
            pass
        import gluon_modern_cnn
        from gluon_modern_cnn.runtime.compat import threads_setting
        import mxnet as mx
        print(mx.base._LIB.omp_get_max_threads(), threads_setting())
        """)
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                            text=True, timeout=300, env=env)
    used, note = result.stdout.strip().split(" ", 1)
    assert "set by gluon_modern_cnn" not in note, note
    assert "loaded before gluon_modern_cnn" in note and "half the processors" in note
    assert int(used) == max(1, (os.cpu_count() or 2) // 2)


@pytest.mark.skipif(not NUMPY_WITHOUT_ALIASES, reason="numpy < 1.24 imports MXNet without help")
def test_a_broken_mxnet_that_something_kept_gets_one_clear_message():
    result = _run("""
        import sys
        try:
            import mxnet
        except AttributeError:
            pass
        import types
        sys.modules["mxnet"] = types.ModuleType("mxnet")   # what a kept half-built module looks like
        import gluon_modern_cnn
        """)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: MXNet is only half-imported in this process")
    assert "Restart the Python process" in last and "import gluon_modern_cnn before mxnet" in last
