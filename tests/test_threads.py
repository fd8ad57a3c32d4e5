"""Full speed by default: the package gives MXNet one OpenMP thread per usable core unless the user
set ``OMP_NUM_THREADS`` (MXNet 1.9 alone would use half the processors)."""
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.subprocess

# What a fresh interpreter sees: the variable, MXNet's OpenMP thread count and the devices report.
PROBE = """
import os
import gluon_modern_cnn
import mxnet as mx
from gluon_modern_cnn.runtime.devices import describe_devices
print(os.environ.get("OMP_NUM_THREADS"))
print(mx.base._LIB.omp_get_max_threads())
print(describe_devices().splitlines()[-1])
"""


def probe(env_changes=None, cores=None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "GLUON_MODERN_CNN_DEFAULT_OMP_NUM_THREADS")}
    env.update(env_changes or {})
    pin = (lambda: os.sched_setaffinity(0, cores)) if cores else None
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                          timeout=300, preexec_fn=pin, check=True)
    variable, threads, report = done.stdout.strip().splitlines()
    return variable, int(threads), report


def test_unset_threads_default_to_the_usable_cores():
    cores = len(os.sched_getaffinity(0))
    variable, threads, report = probe()
    assert variable == str(cores) and threads == cores
    assert report.startswith(f"CPU threads: OMP_NUM_THREADS={cores}, set by gluon_modern_cnn to the "
                             f"{cores} usable core")
    assert "half the processors" in report


def test_the_usable_cores_are_the_affinity_not_the_machine():
    first = min(os.sched_getaffinity(0))
    variable, threads, report = probe(cores={first})
    assert (variable, threads) == ("1", 1)
    assert "to the 1 usable core (" in report


def test_a_users_setting_is_kept_and_reported_as_theirs():
    variable, threads, report = probe({"OMP_NUM_THREADS": "1"})
    assert (variable, threads) == ("1", 1)
    cores = len(os.sched_getaffinity(0))
    assert report == (f"CPU threads: OMP_NUM_THREADS=1, set by you ({cores} usable "
                      f"core{'s' if cores != 1 else ''})")


def test_child_processes_report_the_packages_default_as_such():
    # A benchmark or cluster worker inherits the variables the package set in its parent.
    cores = str(len(os.sched_getaffinity(0)))
    variable, threads, report = probe({"OMP_NUM_THREADS": cores,
                                       "GLUON_MODERN_CNN_DEFAULT_OMP_NUM_THREADS": cores})
    assert variable == cores and "set by gluon_modern_cnn" in report
