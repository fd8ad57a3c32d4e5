"""Shared test fixtures: where the book's text and the real Fashion-MNIST files are, and markers.

Two kinds of material are not in the repository: the book's text (extractions with its printed
outputs, in the project's ``shared`` folder) and the real Fashion-MNIST files. The fixtures look for
them where a user keeps them:

* the data: ``$FASHION_MNIST_ROOT``, MXNet's dataset cache (``$MXNET_HOME/datasets/fashion-mnist``,
  ``~/.mxnet/...``), ``../shared/data/fashion-mnist``; else they are downloaded where the network
  allows, into the folder the package itself downloads to (unless ``GLUON_MODERN_CNN_TEST_OFFLINE=1``);
* the book's text: ``$GLUON_MODERN_CNN_SHARED/seeds``, ``../shared/seeds`` (CI's layout).

Where the material is missing, the tests that need it are skipped with one line naming what is
missing and how to provide it. CI (``CI=true``) has ``../shared`` beside the repository, so there a
missing folder fails those tests instead of skipping them.

Markers (``pytest -m "not slow"`` leaves the heavy tests out): ``data`` and ``book`` are set from the
fixtures a test uses, ``slow`` from the fixtures, modules and tests listed below; ``subprocess``, ``slow``
and ``smoke`` are also set by the tests themselves.
"""
import os
import signal
from pathlib import Path
from typing import List

import pytest

import gluon_modern_cnn  # noqa: F401  (numpy aliases, mxnet import and set_np before any test)

REPO = Path(__file__).resolve().parents[1]
SHARED_ENV_VAR = "GLUON_MODERN_CNN_SHARED"
OFFLINE_ENV_VAR = "GLUON_MODERN_CNN_TEST_OFFLINE"

MARKERS = {
    "data": "needs the real Fashion-MNIST files (found, downloaded, or skipped saying how to get them)",
    "book": "needs the book's text (the project's shared folder: ../shared or $GLUON_MODERN_CNN_SHARED)",
    "subprocess": "starts Python processes (the command line, a fresh interpreter)",
    "slow": "takes more than a few seconds (training, whole-model checks); `-m 'not slow'` skips it",
    "smoke": "a one-minute check of a fresh install, one test of each kind (`pytest -m smoke`)",
}
# Markers a test gets from the fixtures it uses (the CLI's `trained` and `independent` runs train
# models in subprocesses).
_FIXTURE_MARKERS = {"fashion_mnist_root": "data", "seeds_dir": "book", "editions_dir": "book",
                    "trained": "slow", "independent": "slow"}
# Modules whose tests all train, start clusters or compare whole model zoos: slow.
_SLOW_MODULES = {"test_checkpoint.py", "test_distributed.py", "test_fresh_clone.py",
                 "test_multidevice.py", "test_variants.py"}
# Tests that run every registered model forward and backward or through FLOP counting, or train
# on the real data in subprocesses (minutes).
_SLOW_TESTS = {"test_forward_backward_reaches_every_parameter",
               "test_committed_page_is_the_generated_one",
               "test_sigterm_keeps_the_checkpoint_and_the_resumed_run_is_identical",
               "test_two_runs_into_one_folder_leave_one_whole_run",
               "test_one_epoch_of_the_batch_norm_lenet_on_real_data"}


def pytest_configure(config):
    # A shell that starts the tests in the background (`cmd &` without job control) makes them
    # ignore Ctrl-C, and a process ignoring SIGINT passes that on to every child it starts: the
    # tests that press Ctrl-C on a training run or a cluster would find it ignored. A handler here
    # (not SIG_IGN) gives every child the default Ctrl-C again.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")


def pytest_collection_modifyitems(config, items):
    for item in items:
        for fixture, marker in _FIXTURE_MARKERS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)
        if item.path.name in _SLOW_MODULES or getattr(item, "originalname", None) in _SLOW_TESTS:
            item.add_marker("slow")


def in_ci() -> bool:
    """CI sets ``CI=true``; it has everything the tests need, so nothing may be skipped there."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _missing(what: str, looked: List[str], how: str):
    """Skip (fail in CI) with one line: what is missing, where it was looked for, how to provide it."""
    message = f"{what} not found (looked in {', '.join(looked)}); {how}"
    if in_ci():
        pytest.fail(f"CI=true, so nothing may be skipped: {message}", pytrace=False)
    pytest.skip(message)


def _shared_folders() -> List[Path]:
    folders = [Path(os.environ[SHARED_ENV_VAR]).expanduser()] if os.environ.get(SHARED_ENV_VAR) else []
    return folders + [REPO.parent / "shared"]


def _shared_subfolder(name: str, what: str) -> Path:
    candidates = [folder / name for folder in _shared_folders()]
    for path in candidates:
        if path.is_dir():
            return path
    _missing(what, [str(path) for path in candidates],
             f"put the project's shared folder beside the repository as CI does, or set "
             f"{SHARED_ENV_VAR}=DIR to a folder holding {name}/")


@pytest.fixture(scope="session")
def seeds_dir() -> Path:
    """The folder of the book's text extractions."""
    return _shared_subfolder("seeds", "the book's text (seeds/)")


@pytest.fixture(scope="session")
def editions_dir() -> Path:
    """The folder of the book's Markdown sources, one subfolder per edition."""
    return _shared_subfolder("editions", "the book's Markdown editions (editions/)")


def _holds_fashion_mnist(folder: Path) -> bool:
    from gluon_modern_cnn.data import fashion_mnist_files
    try:
        for train in (True, False):
            fashion_mnist_files(train, root=folder, download=False)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True


@pytest.fixture(scope="session")
def fashion_mnist_root() -> Path:
    """The folder holding the real Fashion-MNIST IDX files (gzip)."""
    return _fashion_mnist_root()


_download_failed: List[str] = []


def _fashion_mnist_root() -> Path:
    import mxnet as mx
    from gluon_modern_cnn.data import ROOT_ENV_VAR, fashion_mnist_files, resolve_data_root
    candidates = [Path(os.environ[ROOT_ENV_VAR]).expanduser()] if os.environ.get(ROOT_ENV_VAR) else []
    candidates.append(Path(mx.base.data_dir()) / "datasets" / "fashion-mnist")
    candidates += [folder / "data" / "fashion-mnist" for folder in _shared_folders()]
    for folder in candidates:
        if _holds_fashion_mnist(folder):
            return folder
    looked = [str(folder) for folder in candidates]
    if os.environ.get(OFFLINE_ENV_VAR) == "1":
        looked.append(f"no download: {OFFLINE_ENV_VAR}=1")
    elif not _download_failed:
        target = resolve_data_root(None)  # where the package itself downloads to
        try:
            for train in (True, False):
                fashion_mnist_files(train, root=target, download=True)
            return target
        except FileNotFoundError as err:
            reason = str(err).split("\n")[1].strip(" -") if "\n" in str(err) else str(err)
            _download_failed.append(f"download failed: {reason}")
    looked += _download_failed
    _missing("the Fashion-MNIST files", looked,
             f"set {ROOT_ENV_VAR}=DIR to a folder holding the four files (e.g. from "
             f"https://github.com/zalandoresearch/fashion-mnist) or run the tests once with network")


@pytest.fixture
def fresh_names():
    """A fresh MXNet name scope, so layer names are numbered as in a fresh notebook."""
    import mxnet as mx
    with mx.name.NameManager():
        yield


def synthetic_loaders(n: int = 64, batch_size: int = 16):
    """``(train_iter, test_iter)`` over ``n`` random 28x28 images labelled by their brightness
    (learnable in a few steps), for tests that train without Fashion-MNIST."""
    import numpy as onp
    from gluon_modern_cnn.data import FastImageLoader
    rng = onp.random.RandomState(0)
    images = rng.randint(0, 256, size=(n, 28, 28), dtype=onp.uint8)
    labels = (images.reshape(n, -1).mean(axis=1) > 127.5).astype(onp.int32)
    return (FastImageLoader(images, labels, batch_size, shuffle=True, seed=0, prefetch=0),
            FastImageLoader(images, labels, batch_size, prefetch=0))
