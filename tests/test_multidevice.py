"""Data-parallel training on several devices of one machine (the book's ``train_ch13`` pattern),
on two CPU contexts, ``mx.cpu(0)`` and ``mx.cpu(1)``, which MXNet addresses like two GPUs.

Without batch norm, splitting a batch over two devices changes only the order in which the
gradient is summed, so the parameters match one device's to float32 rounding. With batch norm
each shard is normalised with its own statistics: a different (still working) computation.
"""
from __future__ import annotations

import json
from typing import Dict, List

import mxnet as mx
import numpy
import pytest
from mxnet import gluon, init, np
from mxnet.gluon import nn

from gluon_modern_cnn import book, cli, training
from gluon_modern_cnn.data import FastImageLoader
from gluon_modern_cnn.training.experiment import fashion_mnist_loader
from gluon_modern_cnn.models import lenet_bn

ONE, TWO = [mx.cpu(0)], [mx.cpu(0), mx.cpu(1)]
SEED, BATCH_SIZE, LR = 3, 64, 0.9
# float32 sums of the same gradient in another order: measured 1.0e-7 apart at most after 8
# steps of LeNet, while training moved the weights by up to 0.09.
RTOL, ATOL = 1e-5, 1e-6


def lenet() -> nn.Sequential:
    """Section 6.6's LeNet: no batch norm, no dropout."""
    net = nn.Sequential()
    net.add(nn.Conv2D(6, kernel_size=5, padding=2, activation="sigmoid"),
            nn.AvgPool2D(pool_size=2, strides=2),
            nn.Conv2D(16, kernel_size=5, activation="sigmoid"),
            nn.AvgPool2D(pool_size=2, strides=2),
            nn.Dense(120, activation="sigmoid"), nn.Dense(84, activation="sigmoid"), nn.Dense(10))
    return net


def parameters(net, device, *, trainable: bool = True) -> Dict[str, numpy.ndarray]:
    """The (trainable, or else running-statistics) parameters' copies on ``device``, by the
    parameter's position (names differ between networks built in one process)."""
    return {f"{i}": p.data(device).asnumpy()
            for i, p in enumerate(net.collect_params().values())
            if (p.grad_req != "null") == trainable}


def train_ch13_run(build, devices, root, *, subset: int, num_epochs: int = 1):
    """Build, initialise and train as the book's chapter 13 cells do; returns
    ``(net, initial trainable parameters, history)``."""
    mx.random.seed(SEED)
    with mx.name.NameManager():
        net = build()
    net.initialize(init=init.Xavier(), ctx=devices)
    net(np.zeros((1, 1, 28, 28), ctx=devices[0]))  # the deferred initialisation, on every device
    initial = parameters(net, devices[0])
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": LR})
    train_iter = fashion_mnist_loader(True, batch_size=BATCH_SIZE, subset=subset, seed=SEED,
                                      data_root=root)
    test_iter = fashion_mnist_loader(False, batch_size=256, subset=256, data_root=root)
    history = training.train_ch13_with_history(net, train_iter, test_iter, gluon.loss.SoftmaxCrossEntropyLoss(),
                                  trainer, num_epochs, devices)
    return net, initial, history


def test_two_devices_train_like_one_without_batch_norm(fashion_mnist_root, capsys):
    one, start, one_history = train_ch13_run(lenet, ONE, fashion_mnist_root, subset=512)
    two, two_start, two_history = train_ch13_run(lenet, TWO, fashion_mnist_root, subset=512)
    printed = capsys.readouterr().out.splitlines()
    assert book.SPEED_PATTERN.match(printed[1]).group("device") == "cpu(0)"
    # train_ch13's second line lists the devices as the book prints str(devices).
    assert printed[3].endswith(" examples/sec on [cpu(0), cpu(1)]"), printed
    assert book.RESULT_PATTERN.match(printed[2])
    final_one, final_two = parameters(one, mx.cpu(0)), parameters(two, mx.cpu(0))
    for name, w in final_one.items():
        assert numpy.array_equal(start[name], two_start[name])  # the same initial weights
        numpy.testing.assert_allclose(final_two[name], w, rtol=RTOL, atol=ATOL, err_msg=name)
        # The kvstore gives both devices the same updated copy.
        assert numpy.array_equal(final_two[name], parameters(two, mx.cpu(1))[name])
    moved = max(float(numpy.abs(final_one[n] - start[n]).max()) for n in start)
    assert moved > 1e-2  # far beyond the tolerance: the comparison is of trained weights
    assert two_history.final.train_loss == pytest.approx(one_history.final.train_loss, rel=1e-5)
    assert two_history.final.examples == one_history.final.examples == 512


def test_batch_norm_normalises_each_shard_with_its_own_statistics(fashion_mnist_root):
    # 3 steps of 64: each device's batch norm sees 32 samples, one device's all 64.
    one, _, _ = train_ch13_run(lenet_bn, ONE, fashion_mnist_root, subset=3 * BATCH_SIZE)
    two, _, _ = train_ch13_run(lenet_bn, TWO, fashion_mnist_root, subset=3 * BATCH_SIZE)
    final_one, final_two = parameters(one, mx.cpu(0)), parameters(two, mx.cpu(0))
    apart = max(float(numpy.abs(final_one[n] - final_two[n]).max()) for n in final_one)
    assert apart > 1e-3, apart  # 0.06 measured: another computation, not rounding
    assert all(numpy.array_equal(w, parameters(two, mx.cpu(1))[n]) for n, w in final_two.items())
    # The running statistics are not gradients: each device keeps those of its own shards.
    running = [parameters(two, device, trainable=False) for device in TWO]
    assert len(running[0]) == 8  # 4 batch norms: running mean and variance
    assert all(not numpy.allclose(running[0][n], running[1][n]) for n in running[0])


def test_train_command_on_two_devices_trains_the_batch_norm_lenet(fashion_mnist_root, tmp_path,
                                                                  capsys):
    out = tmp_path / "run"
    status = cli.main(["train", "lenet_bn", "--device", "cpu0,cpu1", "--subset", "2048",
                       "--epochs", "3", "--batch-size", "128", "--data-root",
                       str(fashion_mnist_root), "--out", str(out)])
    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    assert book.RESULT_PATTERN.match(lines[-2]), lines
    assert lines[-1].endswith(" examples/sec on [cpu(0), cpu(1)]"), lines
    run = json.loads((out / "settings.json").read_text())
    assert run["devices"] == ["cpu(0)", "cpu(1)"] and "cluster" not in run
    epochs: List[dict] = json.loads((out / "history.json").read_text())["epochs"]
    losses = [e["train_loss"] for e in epochs]
    assert losses[0] > losses[1] > losses[2], losses
    assert epochs[2]["train_acc"] > epochs[0]["train_acc"] + 0.1
    assert epochs[2]["test_acc"] > max(0.5, epochs[0]["test_acc"] + 0.2), epochs


def _spy_trainer(net, steps: List[int]) -> gluon.Trainer:
    class Spy(gluon.Trainer):
        def step(self, batch_size, ignore_stale_grad=False):
            steps.append(batch_size)
            super().step(batch_size, ignore_stale_grad)
    return Spy(net.collect_params(), "sgd", {"learning_rate": 0.1})


@pytest.mark.parametrize("step_batch_size, expected", [(None, [64, 36]), (128, [128, 128])])
def test_trainer_step_gets_the_step_batch_size_on_every_step(step_batch_size, expected):
    # 100 samples in batches of 64: a short last batch of 36.
    images = numpy.random.RandomState(0).randint(0, 256, (100, 28, 28)).astype(numpy.uint8)
    loader = FastImageLoader(images, numpy.arange(100) % 10, 64, prefetch=0)
    net = nn.Dense(10)
    net.initialize()
    net(np.zeros((1, 1, 28, 28)))
    steps: List[int] = []
    training.fit(net, loader, loader, 1, trainer=_spy_trainer(net, steps), device=mx.cpu(),
                 initialize=False, step_batch_size=step_batch_size)
    assert steps == expected


def test_train_ch13_needs_the_callers_trainer():
    net = nn.Dense(10)
    with pytest.raises(ValueError, match="train_ch13 takes the gluon.Trainer the caller built"):
        training.train_ch13(net, [], [], gluon.loss.SoftmaxCrossEntropyLoss(), None, 1, TWO)
    with pytest.raises(ValueError, match="step_batch_size must be a positive integer"):
        training.fit(net, [], [], 1, lr=0.1, device=mx.cpu(), step_batch_size=0)
