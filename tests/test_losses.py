"""Label-smoothing softmax cross-entropy: its values, gradient, options, and training with it."""
import math

import mxnet as mx
import numpy as onp
import pytest
from mxnet import autograd, gluon, np

import gluon_modern_cnn as d2l
from gluon_modern_cnn.data import FastImageLoader
from gluon_modern_cnn.training.losses import LabelSmoothingSoftmaxCELoss

K = 5


def _batch(seed=0):
    rng = onp.random.default_rng(seed)
    logits = rng.normal(0, 2, size=(6, K)).astype("float32")
    labels = onp.array([0, 1, 2, 3, 4, 2])
    return logits, labels


def _smoothed(labels, epsilon, classes=K):
    return (1 - epsilon) * onp.eye(classes)[labels] + epsilon / classes


def _log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - onp.log(onp.exp(shifted).sum(axis=1, keepdims=True))


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.5, 1.0])
def test_loss_is_the_cross_entropy_with_smoothed_targets(epsilon):
    logits, labels = _batch()
    expected = -(_smoothed(labels, epsilon) * _log_softmax(logits)).sum(axis=1)
    loss = LabelSmoothingSoftmaxCELoss(epsilon)(np.array(logits), np.array(labels))
    onp.testing.assert_allclose(loss.asnumpy(), expected, rtol=1e-5)


def test_no_smoothing_is_gluons_softmax_cross_entropy():
    logits, labels = _batch()
    ours = LabelSmoothingSoftmaxCELoss(0.0)(np.array(logits), np.array(labels))
    gluons = gluon.loss.SoftmaxCrossEntropyLoss()(np.array(logits), np.array(labels))
    onp.testing.assert_allclose(ours.asnumpy(), gluons.asnumpy(), rtol=1e-6)


def test_gradient_is_softmax_minus_smoothed_target():
    logits, labels = _batch()
    X = np.array(logits)
    X.attach_grad()
    with autograd.record():
        loss = LabelSmoothingSoftmaxCELoss(0.1)(X, np.array(labels))
    loss.backward()
    expected = onp.exp(_log_softmax(logits)) - _smoothed(labels, 0.1)
    onp.testing.assert_allclose(X.grad.asnumpy(), expected, atol=1e-5)


def test_hybridized_dense_labels_logits_and_weights_agree():
    logits, labels = _batch()
    X, y = np.array(logits), np.array(labels)
    reference = LabelSmoothingSoftmaxCELoss(0.2)(X, y).asnumpy()
    hybrid = LabelSmoothingSoftmaxCELoss(0.2)
    hybrid.hybridize()
    onp.testing.assert_allclose(hybrid(X, y).asnumpy(), reference, rtol=1e-6)
    dense = LabelSmoothingSoftmaxCELoss(0.2, sparse_label=False)(X, np.array(onp.eye(K)[labels]))
    onp.testing.assert_allclose(dense.asnumpy(), reference, rtol=1e-6)
    log_probs = np.array(_log_softmax(logits))
    from_logits = LabelSmoothingSoftmaxCELoss(0.2, from_logits=True)(log_probs, y)
    onp.testing.assert_allclose(from_logits.asnumpy(), reference, rtol=1e-5)
    weights = onp.arange(6, dtype="float32").reshape(6, 1)
    weighted = LabelSmoothingSoftmaxCELoss(0.2, weight=0.5)(X, y, np.array(weights))
    onp.testing.assert_allclose(weighted.asnumpy(), 0.5 * weights[:, 0] * reference, rtol=1e-6)


@pytest.mark.parametrize("epsilon", [-0.1, 1.5, "0.1", True, None, float("nan")])
def test_bad_epsilon_is_rejected(epsilon):
    with pytest.raises(ValueError, match=r"epsilon \(the label smoothing\) must be a number in"):
        LabelSmoothingSoftmaxCELoss(epsilon)


def _separable_data(n=200, classes=10, seed=0):
    """Images made of one bright column per class plus noise: a small MLP fits them exactly."""
    rng = onp.random.default_rng(seed)
    labels = rng.integers(0, classes, size=n).astype(onp.int32)
    images = rng.integers(0, 60, size=(n, 28, 28), dtype=onp.uint8)
    for i, label in enumerate(labels):
        images[i, :, 2 * label + 4] = 255
    return (FastImageLoader(images, labels, 50, shuffle=True, seed=seed, prefetch=0),
            FastImageLoader(images, labels, 50, prefetch=0))


def _train(loss, capsys):
    train_iter, test_iter = _separable_data()
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(32, activation="relu"), gluon.nn.Dense(10))
    history = d2l.train_ch6_with_history(net, train_iter, test_iter, 15, 0.5, mx.cpu(), seed=0, loss=loss)
    capsys.readouterr()
    return history.final


def test_train_ch6_trains_with_label_smoothing(capsys):
    epsilon, classes = 0.2, 10
    # The smoothed target's entropy bounds the loss from below, however well the net fits.
    high, low = 1 - epsilon + epsilon / classes, epsilon / classes
    floor = -high * math.log(high) - (classes - 1) * low * math.log(low)
    smoothed = _train(LabelSmoothingSoftmaxCELoss(epsilon), capsys)
    plain = _train(None, capsys)
    assert smoothed.train_acc == 1.0 and plain.train_acc == 1.0
    assert floor <= smoothed.train_loss < floor + 0.3
    assert plain.train_loss < floor  # the book's loss is not bounded by it
