"""Shared test fixtures: where the book's seeds and the real Fashion-MNIST files are.

CI clones the repository with ``../shared`` beside it (the source documents and the real data), so
tests that need them find them there and fail loudly, never skip, when they are missing.
"""
from pathlib import Path

import pytest

import gluon_modern_cnn  # noqa: F401  (numpy aliases, mxnet import and set_np before any test)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SEEDS = SHARED / "seeds"
FASHION_MNIST = SHARED / "data" / "fashion-mnist"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests expect the project's shared material "
                    f"(../shared beside the repository, as in CI)")
    return path


@pytest.fixture(scope="session")
def seeds_dir() -> Path:
    """The folder of the book's text extractions."""
    return _require(SEEDS)


@pytest.fixture(scope="session")
def fashion_mnist_root() -> Path:
    """The folder holding the real Fashion-MNIST IDX files (gzip)."""
    return _require(FASHION_MNIST)


@pytest.fixture
def fresh_names():
    """A fresh MXNet name scope, so layer names are numbered as in a fresh notebook."""
    import mxnet as mx
    with mx.name.NameManager():
        yield
