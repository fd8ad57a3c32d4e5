"""Section 7.5's batch normalization from scratch, against Gluon's nn.BatchNorm and by hand."""
import mxnet as mx
import numpy as onp
import pytest
from mxnet import autograd, np
from mxnet.gluon import nn

from gluon_modern_cnn.models import BatchNorm, batch_norm

EPS = 1e-5


def _weights(shape):
    return np.array(onp.random.RandomState(1).uniform(-1, 1, size=shape).astype("float32"))


@pytest.mark.parametrize("shape", [(16, 5), (8, 3, 4, 4)])
def test_training_mode_matches_gluon_batchnorm(shape):
    """Outputs and the gradients of sum(Y * W) w.r.t. X, gamma and beta agree."""
    rng = onp.random.RandomState(0)
    x = rng.normal(2.0, 3.0, size=shape).astype("float32")
    channels = shape[1]
    stat_shape = (1, channels) if len(shape) == 2 else (1, channels, 1, 1)
    g = rng.uniform(0.5, 2, size=channels).astype("float32")
    b = rng.uniform(-1, 1, size=channels).astype("float32")
    W = _weights(shape)

    X, gamma, beta = np.array(x), np.array(g.reshape(stat_shape)), np.array(b.reshape(stat_shape))
    for a in (X, gamma, beta):
        a.attach_grad()
    with autograd.record():
        Y, _, _ = batch_norm(X, gamma, beta, np.zeros(stat_shape), np.zeros(stat_shape),
                             eps=EPS, momentum=0.9)
        (Y * W).sum().backward()

    gluon_bn = nn.BatchNorm(epsilon=EPS, in_channels=channels)
    gluon_bn.initialize()
    gluon_bn.gamma.set_data(np.array(g))
    gluon_bn.beta.set_data(np.array(b))
    X2 = np.array(x)
    X2.attach_grad()
    with autograd.record():
        Y2 = gluon_bn(X2)
        (Y2 * W).sum().backward()

    onp.testing.assert_allclose(Y.asnumpy(), Y2.asnumpy(), rtol=1e-4, atol=1e-5)
    onp.testing.assert_allclose(X.grad.asnumpy(), X2.grad.asnumpy(), rtol=1e-3, atol=1e-5)
    onp.testing.assert_allclose(gamma.grad.asnumpy().reshape(-1), gluon_bn.gamma.grad().asnumpy(),
                                rtol=1e-4, atol=1e-4)
    onp.testing.assert_allclose(beta.grad.asnumpy().reshape(-1), gluon_bn.beta.grad().asnumpy(),
                                rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("num_dims,shape", [(2, (10, 4)), (4, (6, 4, 3, 3))])
def test_moving_statistics_follow_the_books_rule(num_dims, shape):
    momentum = 0.9
    layer = BatchNorm(4, num_dims=num_dims, eps=EPS, momentum=momentum)
    layer.initialize()
    axes = (0,) if num_dims == 2 else (0, 2, 3)
    mean = onp.zeros(layer.moving_mean.shape)  # the book starts both at 0 (nn.BatchNorm: var 1)
    var = onp.zeros(layer.moving_var.shape)
    rng = onp.random.RandomState(3)
    for step in range(4):
        x = rng.normal(step, 1 + step, size=shape).astype("float32")
        with autograd.record():  # the update happens in forward (nn.BatchNorm: in backward)
            layer(np.array(x))
        mean = momentum * mean + (1 - momentum) * x.mean(axis=axes, keepdims=True).reshape(mean.shape)
        var = momentum * var + (1 - momentum) * x.var(axis=axes, keepdims=True).reshape(var.shape)
        onp.testing.assert_allclose(layer.moving_mean.asnumpy(), mean, rtol=1e-5, atol=1e-6)
        onp.testing.assert_allclose(layer.moving_var.asnumpy(), var, rtol=1e-5, atol=1e-6)


def test_gluon_batchnorm_differs_as_documented():
    # What the comparisons above must account for: nn.BatchNorm starts its running variance at 1
    # and updates its running statistics in backward, not in forward.
    bn = nn.BatchNorm(momentum=0.9)
    bn.initialize()
    x = onp.random.RandomState(0).normal(size=(8, 3, 4, 4)).astype("float32")
    with autograd.record():
        Y = bn(np.array(x))
    onp.testing.assert_array_equal(bn.running_var.data().asnumpy(), onp.ones(3))
    onp.testing.assert_array_equal(bn.running_mean.data().asnumpy(), onp.zeros(3))
    Y.backward()
    onp.testing.assert_allclose(bn.running_var.data().asnumpy(),
                                0.9 + 0.1 * x.var(axis=(0, 2, 3)), rtol=1e-5)


@pytest.mark.parametrize("num_dims,shape", [(2, (5, 3)), (4, (5, 3, 2, 2))])
def test_prediction_mode_uses_the_moving_statistics(num_dims, shape):
    layer = BatchNorm(3, num_dims=num_dims, eps=EPS)
    layer.initialize()
    stat_shape = layer.moving_mean.shape
    layer.moving_mean = np.array(onp.arange(1, 4).reshape(stat_shape).astype("float32"))
    layer.moving_var = np.array(onp.full(stat_shape, 4.0, dtype="float32"))
    x = onp.random.RandomState(0).normal(size=shape).astype("float32")
    expected = (x - onp.arange(1, 4).reshape(stat_shape)) / onp.sqrt(4.0 + EPS)
    onp.testing.assert_allclose(layer(np.array(x)).asnumpy(), expected, rtol=1e-5)
    with autograd.record(), autograd.predict_mode():
        onp.testing.assert_allclose(layer(np.array(x)).asnumpy(), expected, rtol=1e-5)
    onp.testing.assert_array_equal(layer.moving_var.asnumpy(), onp.full(stat_shape, 4.0))


def test_moving_statistics_follow_the_inputs_context():
    layer = BatchNorm(2, num_dims=2)
    layer.initialize(ctx=mx.cpu(1))
    assert layer.moving_mean.ctx == mx.cpu(0)
    with autograd.record():
        layer(np.ones((4, 2), ctx=mx.cpu(1)))
    assert layer.moving_mean.ctx == mx.cpu(1) and layer.moving_var.ctx == mx.cpu(1)


def test_eps_and_momentum_are_the_callers_choice():
    assert (BatchNorm(2, 2).eps, BatchNorm(2, 2).momentum) == (1e-12, 0.9)  # section 7.5
    layer = BatchNorm(2, 2, eps=1e-5, momentum=0.5)  # section 5.11 used eps=1e-5
    layer.initialize()
    x = onp.array([[0.0, 1.0], [2.0, 5.0]], dtype="float32")
    with autograd.record():
        layer(np.array(x))
    onp.testing.assert_allclose(layer.moving_var.asnumpy(), 0.5 * x.var(axis=0, keepdims=True))


def test_three_dimensional_input_in_training_mode_is_a_clear_error():
    X = np.zeros((2, 3, 4))
    with autograd.record(), pytest.raises(ValueError, match="got a 3-D input of shape"):
        batch_norm(X, np.ones((1, 3, 1)), np.zeros((1, 3, 1)), np.zeros((1, 3, 1)),
                   np.zeros((1, 3, 1)), eps=EPS, momentum=0.9)
