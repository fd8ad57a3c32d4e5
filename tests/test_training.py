"""The book's training loop: its results and printed lines, and how it fails."""
import os
import re
import signal

import mxnet as mx
import numpy as onp
import pytest
from mxnet import gluon, init, np

import gluon_modern_cnn as d2l
from gluon_modern_cnn import book, training
from gluon_modern_cnn.data import FastImageLoader, load_data_fashion_mnist


def _synthetic(n=64, batch_size=16, size=28, seed=0, classes=10):
    """Random images whose label is a simple function of the pixels, so a net can learn it."""
    rng = onp.random.RandomState(seed)
    images = rng.randint(0, 256, size=(n, size, size), dtype=onp.uint8)
    labels = (images.reshape(n, -1).mean(axis=1) > 127.5).astype(onp.int32) % classes
    return (FastImageLoader(images, labels, batch_size, shuffle=True, seed=seed, prefetch=0),
            FastImageLoader(images, labels, batch_size, prefetch=0))


def _mlp():
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(16, activation="relu"), gluon.nn.Dense(10))
    return net


def test_one_epoch_of_the_batch_norm_lenet_on_real_data(fashion_mnist_root, capsys):
    train_iter, test_iter = load_data_fashion_mnist(256, root=fashion_mnist_root, fast=True,
                                                    seed=0)
    net = d2l.get_model("lenet_bn_hybrid")  # section 7.5's nn.BatchNorm LeNet, hybridizable
    net.hybridize(static_alloc=True, static_shape=True)
    history = d2l.train_ch6_with_history(net, train_iter, test_iter, 1, 1.0, mx.cpu())
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert book.RESULT_PATTERN.match(out[0]), out[0]
    assert book.SPEED_PATTERN.match(out[1]) and out[1].endswith(" examples/sec on cpu(0)")
    final = history.final
    assert final.train_acc >= 0.70 and final.test_acc >= 0.50
    # The printed line is the history's, rounded as the book rounds.
    assert out[0] == (f"loss {final.train_loss:.3f}, train acc {final.train_acc:.3f}, "
                      f"test acc {final.test_acc:.3f}")
    assert final.examples == 60000 and history.examples_per_sec > 0


def test_history_has_every_epoch_and_round_trips():
    train_iter, test_iter = _synthetic()
    history = training.fit(_mlp(), train_iter, test_iter, 3, lr=0.5, device=mx.cpu(), seed=1)
    assert [e.epoch for e in history.epochs] == [1, 2, 3]
    assert all(e.examples == 64 and e.step_seconds > 0 for e in history.epochs)
    assert history.devices == ["cpu(0)"] and not history.interrupted
    again = training.History.from_dict(history.to_dict())
    assert again.epochs == history.epochs
    assert again.examples_per_sec == pytest.approx(history.examples_per_sec)


def test_seeded_runs_are_identical():
    def run():
        net = d2l.get_model("lenet_bn_hybrid")
        train_iter, test_iter = _synthetic()
        training.fit(net, train_iter, test_iter, 2, lr=0.9, device=mx.cpu(), seed=7)
        return {k: p.data().asnumpy() for k, p in net._collect_params_with_prefix().items()}
    first, second = run(), run()
    for k in first:
        onp.testing.assert_array_equal(first[k], second[k])


def test_a_diverging_loss_stops_with_a_clear_error():
    train_iter, test_iter = _synthetic()
    net = _mlp()
    net.initialize(init.Xavier())
    net(np.zeros((1, 1, 28, 28)))
    net[1].weight.set_data(np.full(net[1].weight.shape, float("nan")))
    with pytest.raises(training.TrainingDiverged,
                       match=r"loss became nan at epoch 1, batch 1; try a smaller learning rate "
                             r"than 0\.1"):
        training.fit(net, train_iter, test_iter, 2, lr=0.1, device=mx.cpu(), initialize=False)


class _InterruptAt(training.Callback):
    def __init__(self, batch):
        self.batch = batch
        self.seen = []

    def on_batch_end(self, state):
        self.seen.append((state.epoch, state.batch))
        if (state.epoch, state.batch) == (1, self.batch):
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_stops_between_batches_and_keeps_the_history(capsys):
    train_iter, test_iter = _synthetic()
    interrupt = _InterruptAt(batch=1)
    net = _mlp()
    history = d2l.train_ch6_with_history(net, train_iter, test_iter, 5, 0.5, mx.cpu(), callbacks=[interrupt])
    assert history.interrupted and [e.epoch for e in history.epochs] == [1]
    assert interrupt.seen[-1] == (1, 1)  # the batch in flight finished, nothing after it ran
    out = capsys.readouterr().out
    assert "Interrupted: stopping after this batch" in out
    assert "training interrupted during epoch 2; results of epoch 1:" in out
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert net(np.zeros((2, 1, 28, 28))).shape == (2, 10)  # the network is kept, usable


def test_an_input_size_that_does_not_fit_the_initialized_model():
    net = d2l.get_model("lenet_bn")
    net.initialize()
    net(np.zeros((2, 1, 28, 28)))  # fixes the dense layer's input size for 28x28 images
    train_iter, test_iter = _synthetic(size=32)
    with pytest.raises(ValueError, match=r"a batch of shape \(16, 1, 32, 32\) does not fit the "
                                         r"model: its parameters were initialized for another"):
        training.fit(net, train_iter, test_iter, 1, lr=0.1, device=mx.cpu(), initialize=False)


@pytest.mark.parametrize("kwargs,problem", [
    ({"num_epochs": 0}, "num_epochs must be a positive integer; got 0"),
    ({"num_epochs": 2.5}, "num_epochs must be a positive integer"),
    ({"lr": 0}, "lr must be a positive finite number; got 0"),
    ({"lr": -0.1}, "lr must be a positive finite number"),
    ({"device": "gpu0"}, "device must be an mx.Context")])
def test_bad_arguments_are_clear_errors(kwargs, problem):
    train_iter, test_iter = _synthetic()
    args = {"num_epochs": 1, "lr": 0.1, "device": mx.cpu(), **kwargs}
    with pytest.raises(ValueError, match=re.escape(problem)):
        d2l.train_ch6(_mlp(), train_iter, test_iter, args["num_epochs"], args["lr"],
                      args["device"])


@pytest.mark.parametrize("batch_size,resize,problem", [
    (0, None, "batch_size"), (-5, None, "batch_size"), (256, 0, "resize"), (256, -96, "resize")])
def test_bad_loader_arguments_are_clear_errors(batch_size, resize, problem):
    with pytest.raises(ValueError, match=problem):
        load_data_fashion_mnist(batch_size, resize)


def test_train_ch5_prints_the_older_editions_lines(capsys):
    train_iter, test_iter = _synthetic()
    net = d2l.get_model("lenet_bn_scratch", eps=1e-5)
    net.initialize(ctx=mx.cpu(), init=init.Xavier(), force_reinit=True)
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 1.0})
    history = training.train_ch5_with_history(net, train_iter, test_iter, 16, trainer, mx.cpu(), 2)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "training on cpu(0)"
    assert [book.EPOCH_PATTERN.match(line)["epoch"] for line in lines[1:]] == ["1", "2"]
    assert lines[2] == training.format_epoch_ch5(history.epochs[1])


def test_accumulator_timer_accuracy_and_evaluation():
    metric = training.Accumulator(2)
    metric.add(1, np.array(2.5))
    metric.add(2, 0.5)
    assert metric[0] == 3 and metric[1] == 3.0
    timer = training.Timer()
    timer.stop()
    timer.start()
    timer.stop()
    assert len(timer.times) == 2 and timer.cumsum()[-1] == pytest.approx(timer.sum())
    y_hat = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert training.accuracy(y_hat, np.array([1, 1, 1])) == 2.0
    net = gluon.nn.Dense(2, in_units=2, use_bias=False)
    net.initialize(init.Constant(0))
    net.weight.set_data(np.array([[1.0, 0.0], [0.0, 1.0]]))
    data = [(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 0]))]
    assert training.evaluate_accuracy_gpu(net, data) == 0.5


def test_the_books_cells_run_with_the_package_as_d2l(fashion_mnist_root, capsys):
    # Section 7.5's concise cells, verbatim apart from the data root and one short epoch.
    from mxnet.gluon import nn
    net = nn.Sequential()
    net.add(nn.Conv2D(6, kernel_size=5), nn.BatchNorm(), nn.Activation('sigmoid'),
            nn.MaxPool2D(pool_size=2, strides=2), nn.Conv2D(16, kernel_size=5), nn.BatchNorm(),
            nn.Activation('sigmoid'), nn.MaxPool2D(pool_size=2, strides=2), nn.Dense(120),
            nn.BatchNorm(), nn.Activation('sigmoid'), nn.Dense(84), nn.BatchNorm(),
            nn.Activation('sigmoid'), nn.Dense(10))
    lr, num_epochs, batch_size = 1.0, 1, 256
    train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size, root=fashion_mnist_root)
    assert isinstance(train_iter, gluon.data.DataLoader)  # the book's per-sample pipeline
    assert d2l.try_gpu() == mx.cpu()
    X, y = next(iter(train_iter))
    assert X.shape == (256, 1, 28, 28) and X.dtype == onp.float32 and float(X.max()) <= 1.0
    # The training cell, on the first 20 batches (a list, as any iterable of batches will do).
    first_batches = [batch for _, batch in zip(range(20), train_iter)]
    d2l.train_ch6(net, first_batches, first_batches[:4], num_epochs, lr, d2l.try_gpu())
    printed = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"loss \d\.\d{3}, train acc \d\.\d{3}, test acc \d\.\d{3}", printed[-2])
    assert re.fullmatch(r"\d+\.\d examples/sec on cpu\(0\)", printed[-1])
    train_acc = float(printed[-2].split("train acc ")[1].split(",")[0])
    assert train_acc > 0.3  # chance is 0.1; LeNet with batch norm learns within 20 steps at lr 1


class _RecordingTrainer(gluon.Trainer):
    """A gluon.Trainer that remembers what ``step`` was given."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.step_sizes = []

    def step(self, batch_size, ignore_stale_grad=False):
        self.step_sizes.append(batch_size)
        super().step(batch_size, ignore_stale_grad)


def test_the_book_entry_points_return_nothing_and_the_history_functions_return_it(capsys):
    """The book's train_ch6/train_ch5 return None, so a notebook cell shows only their output."""
    train_iter, test_iter = _synthetic()
    assert d2l.train_ch6(_mlp(), train_iter, test_iter, 1, 0.5, mx.cpu()) is None
    net = _mlp()
    net.initialize(ctx=mx.cpu(), init=init.Xavier())
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.5})
    assert d2l.train_ch5(net, train_iter, test_iter, 16, trainer, mx.cpu(), 1) is None
    history = d2l.train_ch6_with_history(_mlp(), train_iter, test_iter, 2, 0.5, mx.cpu())
    assert [e.epoch for e in history.epochs] == [1, 2]
    capsys.readouterr()


def test_train_ch5_passes_the_books_batch_size_to_trainer_step(capsys):
    train_iter, test_iter = _synthetic(batch_size=24)   # 64 examples: batches of 24, 24, 16
    net = _mlp()
    net.initialize(ctx=mx.cpu(), init=init.Xavier())
    trainer = _RecordingTrainer(net.collect_params(), 'sgd', {'learning_rate': 0.5})
    training.train_ch5(net, train_iter, test_iter, 24, trainer, mx.cpu(), 1)
    assert trainer.step_sizes == [24, 24, 24]   # as the book: trainer.step(batch_size), short batch too
    capsys.readouterr()
