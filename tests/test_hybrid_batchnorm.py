"""Section 7.5's scratch batch norm, hybridizable: ``batch_norm_hybrid``, ``HybridBatchNorm``, the
mode-aware blocks that keep one graph per autograd mode, and the ``lenet_bn_scratch_hybrid`` twin.

The reference is always the book's code (``batch_norm``, ``BatchNorm``) or the book's formulas
computed in float64 with NumPy.
"""
import numpy as onp
import pytest

import gluon_modern_cnn as gmc
import mxnet as mx
from mxnet import autograd, gluon, np
from mxnet.gluon import nn

from gluon_modern_cnn.models import (BatchNorm, HybridBatchNorm, ModeAwareHybridBlock,
                                     ModeAwareHybridSequential, batch_norm, batch_norm_hybrid,
                                     lenet_bn_scratch, update_state)

EPS, MOMENTUM = 1e-12, 0.9
SHAPES = {2: (16, 5), 4: (8, 3, 6, 6)}
# How each test runs the layer: on its own, hybridized on its own, inlined in a hybridized parent.
RUNS = ["imperative", "hybridized", "inlined"]


def _net(num_dims, run, *, static=False):
    """A HybridBatchNorm as the test's network; returns (net, the batch-norm layer)."""
    bn = HybridBatchNorm(SHAPES[num_dims][1], num_dims)
    if run == "inlined":
        # A plain HybridSequential in between: only the outermost block must be mode-aware.
        inner = nn.HybridSequential()
        inner.add(bn)
        net = ModeAwareHybridSequential()
        net.add(inner)
    else:
        net = bn
    net.initialize()
    # Non-trivial gamma/beta, so a wrong broadcast or a swapped parameter shows.
    rng = onp.random.RandomState(1)
    bn.gamma.set_data(np.array(rng.uniform(0.5, 2.0, bn.gamma.shape)))
    bn.beta.set_data(np.array(rng.uniform(-1.0, 1.0, bn.beta.shape)))
    if run != "imperative":
        net.hybridize(static_alloc=static, static_shape=static)
    return net, bn


def _batch(num_dims, seed):
    rng = onp.random.RandomState(seed)
    return np.array(rng.normal(2.0, 3.0, SHAPES[num_dims]).astype("float32"))


def _book_forward_backward(X, gamma, beta, moving_mean, moving_var, head):
    X, gamma, beta = X.copy(), gamma.copy(), beta.copy()
    for a in (X, gamma, beta):
        a.attach_grad()
    with autograd.record():
        Y, mm, mv = batch_norm(X, gamma, beta, moving_mean, moving_var, EPS, MOMENTUM)
    Y.backward(head)
    return Y, mm, mv, X.grad, gamma.grad, beta.grad


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("num_dims", [2, 4])
def test_training_step_matches_book(num_dims, run):
    net, bn = _net(num_dims, run)
    X = _batch(num_dims, 0)
    head = _batch(num_dims, 1)
    want = _book_forward_backward(X, bn.gamma.data(), bn.beta.data(), bn.moving_mean.data().copy(),
                                  bn.moving_var.data().copy(), head)
    X.attach_grad()
    with autograd.record():
        Y = net(X)
    Y.backward(head)
    got = (Y, bn.moving_mean.data(), bn.moving_var.data(), X.grad, bn.gamma.grad(), bn.beta.grad())
    for name, g, w in zip(["Y", "moving_mean", "moving_var", "dX", "dgamma", "dbeta"], got, want):
        onp.testing.assert_allclose(g.asnumpy(), w.reshape(g.shape).asnumpy(), rtol=1e-4,
                                    atol=1e-4, err_msg=name)


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("num_dims", [2, 4])
def test_moving_statistics_follow_the_book_rule(num_dims, run):
    net, bn = _net(num_dims, run, static=True)
    axes = (0,) if num_dims == 2 else (0, 2, 3)
    mm = onp.zeros(bn.moving_mean.shape, "float64")
    mv = onp.zeros(bn.moving_var.shape, "float64")
    for step in range(4):
        X = _batch(num_dims, 10 + step)
        with autograd.record():
            net(X)
        x = X.asnumpy().astype("float64")
        mean = x.mean(axis=axes, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
        mm = MOMENTUM * mm + (1 - MOMENTUM) * mean
        mv = MOMENTUM * mv + (1 - MOMENTUM) * var
        onp.testing.assert_allclose(bn.moving_mean.data().asnumpy(), mm, rtol=1e-5, atol=1e-6)
        onp.testing.assert_allclose(bn.moving_var.data().asnumpy(), mv, rtol=1e-5, atol=1e-6)


def _predicted(bn, X):
    """What prediction mode must return: the book's formula with the moving statistics."""
    x = X.asnumpy().astype("float64")
    mm, mv = bn.moving_mean.data().asnumpy(), bn.moving_var.data().asnumpy()
    return bn.gamma.data().asnumpy() * (x - mm) / onp.sqrt(mv + EPS) + bn.beta.data().asnumpy()


@pytest.mark.parametrize("first", ["train", "predict"])
@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("num_dims", [2, 4])
def test_modes_switch_after_hybridization(num_dims, run, first):
    """Whichever mode traces first, each later call uses its own mode's statistics."""
    net, bn = _net(num_dims, run)
    X = _batch(num_dims, 3)
    calls = ["train", "predict", "predict-in-record", "train", "predict"]
    if first == "predict":
        calls = ["predict"] + calls
    for call in calls:
        before = bn.moving_mean.data().asnumpy().copy()
        if call == "train":
            with autograd.record():
                Y = net(X)
            axes = (0,) if num_dims == 2 else (0, 2, 3)
            x = X.asnumpy()
            # training output is normalised per batch: zero mean, unit variance before gamma/beta
            x_hat = (Y.asnumpy() - bn.beta.data().asnumpy()) / bn.gamma.data().asnumpy()
            onp.testing.assert_allclose(x_hat.mean(axis=axes), 0, atol=1e-4)
            onp.testing.assert_allclose(x_hat.var(axis=axes), 1, atol=1e-3)
            assert not onp.allclose(bn.moving_mean.data().asnumpy(), before)
            assert x.shape == Y.shape
        else:
            if call == "predict":
                Y = net(X)
            else:
                with autograd.record(), autograd.predict_mode():
                    Y = net(X)
            onp.testing.assert_allclose(Y.asnumpy(), _predicted(bn, X), rtol=1e-4, atol=1e-4)
            onp.testing.assert_array_equal(bn.moving_mean.data().asnumpy(), before)


def test_train_mode_outside_record_updates_statistics():
    """As in the book, is_training() decides, not recording."""
    net, bn = _net(4, "hybridized")
    with autograd.train_mode():
        net(_batch(4, 0))
    assert float(np.abs(bn.moving_mean.data()).sum()) > 0


def test_batch_norm_after_16_channel_convolution_hybridized():
    """oneDNN hands Conv2D(16) output on in a blocked layout; the graph must run and agree."""
    def make():
        net = ModeAwareHybridSequential()
        net.add(nn.Conv2D(16, kernel_size=3), HybridBatchNorm(16, 4), nn.Activation("sigmoid"),
                nn.Dense(10), HybridBatchNorm(10, 2))
        return net
    X = _batch(4, 5)
    nets = [make(), make()]
    for net in nets:
        net.initialize(mx.init.Xavier())
        net(X)  # finishes deferred initialisation; prediction mode changes no state
    _copy_params(nets[0], nets[1])
    nets[1].hybridize(static_alloc=True, static_shape=True)
    for mode in ("train", "predict"):
        outs = []
        for net in nets:
            if mode == "train":
                with autograd.record():
                    outs.append(net(X).asnumpy())
            else:
                outs.append(net(X).asnumpy())
        onp.testing.assert_allclose(outs[1], outs[0], rtol=1e-4, atol=1e-4, err_msg=mode)


def _copy_params(src, dst):
    for (_, a), (_, b) in zip(sorted(src._collect_params_with_prefix().items()),
                              sorted(dst._collect_params_with_prefix().items())):
        b.set_data(a.data())


@pytest.mark.parametrize("first", ["train", "predict"])
def test_plain_hybrid_parent_is_refused_with_a_fix(first):
    """Whichever mode a plain parent would freeze, the layer refuses to be traced by it."""
    net = nn.HybridSequential()
    net.add(HybridBatchNorm(3, 4))
    net.initialize()
    net.hybridize()
    with pytest.raises(RuntimeError, match="ModeAwareHybridSequential"):
        with autograd.record(train_mode=first == "train"):
            net(_batch(4, 0))


def _lenet(hybrid):
    return lenet_bn_scratch(hybrid=hybrid)


def _lenet_trained(hybrid, steps=3):
    net = _lenet(hybrid)
    net.initialize(mx.init.Xavier())
    if isinstance(net, ModeAwareHybridBlock):
        net.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.5})
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    rng = onp.random.RandomState(0)
    for _ in range(steps):
        X = np.array(rng.uniform(size=(32, 1, 28, 28)).astype("float32"))
        y = np.array(rng.randint(0, 10, 32).astype("float32"))
        with autograd.record():
            l = loss(net(X), y)
        l.backward()
        trainer.step(32)
    return net


def test_save_load_keeps_moving_statistics(tmp_path):
    net = _lenet_trained(True)
    path = str(tmp_path / "lenet.params")
    net.save_parameters(path)
    fresh = _lenet(True)
    fresh.load_parameters(path)
    fresh.hybridize()
    for i in (1, 5, 9, 12):
        for name in ("moving_mean", "moving_var"):
            got, want = getattr(fresh[i], name).data(), getattr(net[i], name).data()
            assert float(np.abs(want).sum()) > 0
            onp.testing.assert_array_equal(got.asnumpy(), want.asnumpy())
    X = np.array(onp.random.RandomState(2).uniform(size=(4, 1, 28, 28)).astype("float32"))
    onp.testing.assert_allclose(fresh(X).asnumpy(), net(X).asnumpy(), rtol=1e-5, atol=1e-5)


def test_parameter_files_interchange_with_the_books_layer(tmp_path):
    book_net = _lenet_trained(False)
    ours = _lenet_trained(True)
    book_file, our_file = str(tmp_path / "book.params"), str(tmp_path / "ours.params")
    book_net.save_parameters(book_file)
    ours.save_parameters(our_file)
    # The book's layer has no moving statistics Parameters: allow them missing / extra.
    fresh_ours = _lenet(True)
    fresh_ours.load_parameters(book_file, allow_missing=True)
    fresh_book = _lenet(False)
    fresh_book.load_parameters(our_file, ignore_extra=True)
    for i in (1, 5, 9, 12):
        for name in ("gamma", "beta"):
            onp.testing.assert_array_equal(getattr(fresh_ours[i], name).data().asnumpy(),
                                           getattr(book_net[i], name).data().asnumpy())
            onp.testing.assert_array_equal(getattr(fresh_book[i], name).data().asnumpy(),
                                           getattr(ours[i], name).data().asnumpy())


def test_export_writes_the_prediction_graph(tmp_path):
    net = _lenet_trained(True)
    prefix = str(tmp_path / "lenet")
    with pytest.raises(RuntimeError, match="prediction-mode graph"):
        net.export(prefix)
    X = np.array(onp.random.RandomState(2).uniform(size=(4, 1, 28, 28)).astype("float32"))
    want = net(X)
    net.export(prefix)
    loaded = gluon.SymbolBlock.imports(prefix + "-symbol.json", ["data"], prefix + "-0000.params")
    onp.testing.assert_allclose(loaded(X).asnumpy(), want.asnumpy(), rtol=1e-5, atol=1e-5)


def test_trainer_leaves_moving_statistics_to_the_layer():
    bn = HybridBatchNorm(3, 4)
    assert bn.moving_mean.grad_req == "null" and bn.moving_var.grad_req == "null"
    assert {"gamma", "beta", "moving_mean", "moving_var"} == set(bn._reg_params)


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_features=3, num_dims=3), "num_dims must be 2"),
    (dict(num_features=0, num_dims=4), "num_features must be a positive integer"),
    (dict(num_features=True, num_dims=4), "num_features must be a positive integer"),
])
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HybridBatchNorm(**kwargs)


def test_input_without_batch_axis_is_refused():
    bn = HybridBatchNorm(3, 2)
    bn.initialize()
    with pytest.raises(ValueError, match="give it a batch axis"):
        bn(np.ones(3))


def test_new_state_must_have_the_parameter_shape():
    bn = HybridBatchNorm(3, 4)
    bn.initialize()
    with pytest.raises(ValueError, match="reshape it first"):
        update_state(mx.ndarray, bn.moving_mean, np.ones((1, 3)))


def test_update_state_needs_a_parameter():
    with pytest.raises(TypeError, match="gluon Parameter"):
        update_state(mx.ndarray, np.zeros(3), np.ones(3))


def test_layer_used_twice_in_one_graph_is_refused():
    bn = HybridBatchNorm(3, 4)
    net = ModeAwareHybridSequential()
    net.add(bn, bn)
    net.initialize()
    net.hybridize()
    with pytest.raises(RuntimeError, match="updated twice"):
        with autograd.record():
            net(_batch(4, 0))


def test_function_works_imperatively_and_returns_book_values():
    X = _batch(4, 7)
    gamma, beta = np.ones((1, 3, 1, 1)), np.zeros((1, 3, 1, 1))
    mm, mv = np.zeros((1, 3, 1, 1)), np.zeros((1, 3, 1, 1))
    with autograd.train_mode():
        got = batch_norm_hybrid(mx.ndarray, X, gamma, beta, mm, mv, eps=EPS, momentum=MOMENTUM)
        want = batch_norm(X, gamma, beta, mm, mv, EPS, MOMENTUM)
    for g, w in zip(got, want):
        onp.testing.assert_allclose(g.asnumpy(), w.asnumpy(), rtol=1e-5, atol=1e-5)


def test_package_files_carry_the_moving_statistics_both_ways(tmp_path):
    """gluon_modern_cnn.save_parameters writes the book layer's array statistics under the names
    the twin's Parameters have: a trained book LeNet and its twin predict alike, either way."""
    X = np.array(onp.random.RandomState(2).uniform(size=(4, 1, 28, 28)).astype("float32"))
    for source_hybrid in (False, True):
        source = _lenet_trained(source_hybrid)
        path = tmp_path / f"source_{source_hybrid}.params"
        gmc.save_parameters(source, path)
        target = _lenet(not source_hybrid)
        target.initialize()
        gmc.load_parameters(target, path)
        if isinstance(target, ModeAwareHybridBlock):
            target.hybridize(static_alloc=True, static_shape=True)
        moving_var = target[1].moving_var
        moving_var = moving_var.data() if isinstance(moving_var, gluon.Parameter) else moving_var
        assert float(np.abs(moving_var).sum()) > 0  # trained statistics arrived
        onp.testing.assert_allclose(target(X).asnumpy(), source(X).asnumpy(), rtol=1e-4,
                                    atol=1e-5)


def test_training_the_twin_follows_the_book_step_by_step():
    """Three SGD steps of the book's LeNet and of the hybridized twin from the same start."""
    book, twin = _lenet(False), _lenet(True)
    X0 = np.zeros((2, 1, 28, 28))
    book.initialize(mx.init.Xavier())
    book(X0)
    twin.initialize()
    twin(X0)
    for name, param in book._collect_params_with_prefix().items():
        twin._collect_params_with_prefix()[name].set_data(param.data())
    twin.hybridize(static_alloc=True, static_shape=True)
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    trainers = [gluon.Trainer(n.collect_params(), "sgd", {"learning_rate": 0.9})
                for n in (book, twin)]
    rng = onp.random.RandomState(0)
    for _ in range(3):
        X = np.array(rng.uniform(size=(32, 1, 28, 28)).astype("float32"))
        y = np.array(rng.randint(0, 10, 32).astype("float32"))
        for net, trainer in zip((book, twin), trainers):
            with autograd.record():
                l = loss(net(X), y)
            l.backward()
            trainer.step(32)
    for i in (1, 5, 9, 12):
        for name in ("gamma", "beta"):
            onp.testing.assert_allclose(getattr(twin[i], name).data().asnumpy(),
                                        getattr(book[i], name).data().asnumpy(),
                                        rtol=1e-3, atol=1e-4)
        for name in ("moving_mean", "moving_var"):
            onp.testing.assert_allclose(getattr(twin[i], name).data().asnumpy(),
                                        getattr(book[i], name).asnumpy(), rtol=1e-3, atol=1e-4)
    onp.testing.assert_allclose(twin(X).asnumpy(), book(X).asnumpy(), rtol=1e-3, atol=1e-3)


def test_symbolic_call_builds_the_current_modes_graph():
    """Shape inference and export call the network on symbols directly: allowed, state untouched."""
    net = _lenet(True)
    out = net(mx.sym.var("data").as_np_ndarray())
    _, shapes, _ = out.as_nd_ndarray().infer_shape(data=(3, 1, 28, 28))
    assert shapes == [(3, 10)]
    assert gmc.model_info("lenet_bn_scratch_hybrid").min_input_size == \
        gmc.model_info("lenet_bn_scratch").min_input_size


def test_twin_is_registered_and_hybridizable():
    info = gmc.model_info("lenet_bn_scratch_hybrid")
    assert info.hybrid and info.twin == "lenet_bn_scratch" and info.section == "7.5"
    net = gmc.get_model("lenet_bn_scratch_hybrid", eps=1e-5, momentum=0.5)
    assert isinstance(net, ModeAwareHybridSequential)
    assert (net[1].eps, net[1].momentum) == (1e-5, 0.5)
    assert type(gmc.get_model("lenet_bn_scratch")[1]) is BatchNorm  # the book's nn.Block
