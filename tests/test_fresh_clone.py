"""A fresh clone runs the README's test command: what it cannot find is skipped, saying how to get it.

The repository is cloned into a temporary folder with no ``shared`` folder beside it, no
``FASHION_MNIST_ROOT``, an empty MXNet home and no download, as on a new user's laptop without a
network; the working tree's uncommitted changes are copied over the clone so that the test checks
the code as it is. The smoke subset holds a test of each kind (pure, book text, real data).
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import OFFLINE_ENV_VAR, REPO, SHARED_ENV_VAR

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.fail("the fresh-clone test needs git and the repository's .git")
    target = tmp_path_factory.mktemp("laptop") / "gluon-modern-cnn"
    _git("clone", "--quiet", str(REPO), str(target), cwd=REPO)
    changed = _git("ls-files", "--modified", "--others", "--exclude-standard", "-z", cwd=REPO)
    for name in filter(None, changed.split("\0")):
        source, copy = REPO / name, target / name
        if source.is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy)
        elif copy.exists():  # deleted in the working tree
            copy.unlink()
    assert not (target.parent / "shared").exists()
    return target


def _run_tests(clone: Path, tmp_path: Path, **env_changes: str) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items()
           if name not in ("CI", "FASHION_MNIST_ROOT", SHARED_ENV_VAR, "PYTEST_ADDOPTS")}
    env.update(MXNET_HOME=str(tmp_path / "mxnet-home"), PYTHONPATH=str(clone),
               **{OFFLINE_ENV_VAR: "1"}, **env_changes)
    # The README's test command, on the smoke subset.
    return subprocess.run([sys.executable, "-m", "pytest", "-m", "smoke", "-p", "no:cacheprovider"],
                          cwd=clone, env=env, capture_output=True, text=True, timeout=600)


def test_a_fresh_clone_passes_and_says_what_it_skipped(clone, tmp_path):
    done = _run_tests(clone, tmp_path)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    summary = out.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and re.search(r"\d+ skipped", summary), summary
    assert "error" not in summary and "failed" not in summary, summary
    skips = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert any("the book's text (seeds/) not found" in line and SHARED_ENV_VAR in line
               and str(clone.parent / "shared" / "seeds") in line for line in skips), out
    assert any("the Fashion-MNIST files not found" in line and "FASHION_MNIST_ROOT=DIR" in line
               and str(tmp_path / "mxnet-home" / "datasets" / "fashion-mnist") in line
               for line in skips), out
    assert not (tmp_path / "mxnet-home").exists(), "looking for the data must not create folders"


def test_in_ci_a_missing_folder_fails_instead_of_skipping(clone, tmp_path):
    done = _run_tests(clone, tmp_path, CI="true")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "CI=true, so nothing may be skipped: the book's text (seeds/) not found" in done.stdout
    assert "CI=true, so nothing may be skipped: the Fashion-MNIST files not found" in done.stdout
    assert " skipped" not in done.stdout.strip().splitlines()[-1]


def test_the_material_is_found_where_a_user_keeps_it(clone, tmp_path, fashion_mnist_root, seeds_dir):
    done = _run_tests(clone, tmp_path, FASHION_MNIST_ROOT=str(fashion_mnist_root),
                      **{SHARED_ENV_VAR: str(seeds_dir.parent)})
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    assert "passed" in summary and "skipped" not in summary, summary
