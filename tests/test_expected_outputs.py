"""Seeded outputs of the book's models compared with stored files, as torchvision's
``_assert_expected`` does: a change that alters what a model computes (a layer, an order, a
default) fails here even when every shape still fits.

Each book model and its hybridized twin get the same parameters, drawn from a seeded numpy
generator in the order of their structural names (so they do not depend on MXNet's random number
generator or its thread count), and the same seeded batch of two images at the book's input size.
One forward pass in training mode moves the batch norms' running statistics away from their
initial values; the prediction-mode output that follows is compared with
``tests/expected/<model>.npy``.

Regenerate the files after an intended change with
``GLUON_MODERN_CNN_ACCEPT=1 pytest tests/test_expected_outputs.py`` and review the diff.

Tolerances: float32 carries about 7 significant digits, and oneDNN picks its convolution and
matrix kernels by CPU (AVX2 here, AVX-512 elsewhere), which changes the order of the sums. A
sum of K products in another order differs by about sqrt(K) * 1.2e-7 relative (K up to 4608 in
these models: ~1e-5 per layer), and up to ~20 layers compound it: rtol 2e-4 covers that with
margin. Outputs near zero have no meaningful relative error, so atol is 2e-4 of the largest
output. A real change (a missing ReLU, a swapped layer) moves outputs by far more.
"""
import os
from pathlib import Path

import mxnet as mx
import numpy as onp
import pytest

import gluon_modern_cnn as gmc
from gluon_modern_cnn.tools import flops

EXPECTED = Path(__file__).resolve().parent / "expected"
ACCEPT = os.environ.get("GLUON_MODERN_CNN_ACCEPT") == "1"
BOOK_MODELS = [n for n in gmc.list_models() if gmc.model_info(n).twin and
               not gmc.model_info(n).hybrid]
RTOL = 2e-4
SEED = 0


def _seeded_parameters(net, input_shape) -> None:
    """Every trainable parameter from one seeded generator, in structural-name order: weights
    Xavier-uniform, scales 1 + U(-0.1, 0.1), biases and shifts U(-0.1, 0.1)."""
    flops.infer_shapes(net, input_shape)  # parameter shapes (an nn.Block initializes itself)
    for p in net.collect_params().values():
        if p._data is None:
            p.initialize()
    rng = onp.random.RandomState(SEED)
    for name, p in sorted(net._collect_params_with_prefix().items()):
        if p.grad_req == "null":
            continue  # running statistics: their initial values, moved by the training pass
        shape = p.shape
        if name.endswith("weight"):
            fan_in, fan_out = int(onp.prod(shape[1:])), shape[0] * int(onp.prod(shape[2:]))
            bound = onp.sqrt(6.0 / (fan_in + fan_out))
            values = rng.uniform(-bound, bound, shape)
        elif name.endswith("gamma"):
            values = 1.0 + rng.uniform(-0.1, 0.1, shape)
        else:
            values = rng.uniform(-0.1, 0.1, shape)
        p.set_data(mx.np.array(values.astype("float32")))


def _seeded_output(name: str, *, hybridize: bool = False) -> onp.ndarray:
    info = gmc.model_info(name)
    shape = (2, info.in_channels, info.input_size, info.input_size)
    with mx.name.NameManager():
        net = gmc.get_model(name)
    _seeded_parameters(net, shape)
    if hybridize:
        net.hybridize()
    X = mx.np.array(onp.random.RandomState(SEED + 1).uniform(0, 1, shape).astype("float32"))
    with mx.autograd.train_mode():
        net(X)
    with mx.autograd.predict_mode():
        return net(X).asnumpy()


def assert_expected(output: onp.ndarray, name: str, *, write: bool = ACCEPT) -> None:
    """Compare ``output`` with ``tests/expected/<name>.npy`` (``write`` stores it first)."""
    path = EXPECTED / f"{name}.npy"
    if write:
        EXPECTED.mkdir(exist_ok=True)
        onp.save(path, output)
    if not path.exists():
        pytest.fail(f"{path} is missing; write it with GLUON_MODERN_CNN_ACCEPT=1 pytest "
                    f"{Path(__file__).name} and review it")
    expected = onp.load(path)
    assert output.shape == expected.shape
    onp.testing.assert_allclose(output, expected, rtol=RTOL,
                                atol=RTOL * float(onp.abs(expected).max()))


def test_every_book_model_has_a_file():
    assert sorted(p.stem for p in EXPECTED.glob("*.npy")) == sorted(BOOK_MODELS)


@pytest.mark.parametrize("name", BOOK_MODELS)
def test_book_model_outputs_match_the_stored_ones(name):
    output = _seeded_output(name)
    assert output.shape == (2, 10)
    assert onp.isfinite(output).all() and output.std() > 0  # not a saturated, constant output
    assert_expected(output, name)


@pytest.mark.parametrize("name", BOOK_MODELS)
def test_hybridized_twin_outputs_match_the_book_models(name):
    # The book model's file, never rewritten from the twin.
    assert_expected(_seeded_output(gmc.model_info(name).hybrid_model, hybridize=True), name,
                    write=False)
