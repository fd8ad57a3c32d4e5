"""Section 5.11 of the older (gluonbook) edition with the edition's own nd code, as seed 000 prints
it, on this package (`import gluon_modern_cnn.gluonbook as gb`). Writes output.txt beside this file.

Run: python docs/reproduction/5.11-gluonbook/reproduce.py  (FASHION_MNIST_ROOT for local files)
"""
import contextlib
import sys
from pathlib import Path

import gluon_modern_cnn.gluonbook as gb
from mxnet import gluon, init, nd  # noqa: F401
from mxnet.gluon import nn


class Tee:
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for s in self.streams:
            s.write(text)
            s.flush()

    def flush(self):
        pass


def main():
    mx_seed = 0
    import mxnet as mx
    mx.random.seed(mx_seed)
    # 5.11.3: the book's cells (gb.BatchNorm is the edition's scratch layer, eps=1e-5).
    net = nn.Sequential()
    net.add(nn.Conv2D(6, kernel_size=5),
            gb.BatchNorm(6, num_dims=4),
            nn.Activation('sigmoid'),
            nn.MaxPool2D(pool_size=2, strides=2),
            nn.Conv2D(16, kernel_size=5),
            gb.BatchNorm(16, num_dims=4),
            nn.Activation('sigmoid'),
            nn.MaxPool2D(pool_size=2, strides=2),
            nn.Dense(120),
            gb.BatchNorm(120, num_dims=2),
            nn.Activation('sigmoid'),
            nn.Dense(84),
            gb.BatchNorm(84, num_dims=2),
            nn.Activation('sigmoid'),
            nn.Dense(10))
    lr = 1.0
    num_epochs = 5
    batch_size = 256
    ctx = gb.try_gpu()
    net.initialize(ctx=ctx, init=init.Xavier(), force_reinit=True)
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': lr})
    train_iter, test_iter = gb.load_data_fashion_mnist(batch_size)
    gb.train_ch5(net, train_iter, test_iter, batch_size, trainer, ctx, num_epochs)
    print(net[1].gamma.data().reshape((-1,)), net[1].beta.data().reshape((-1,)))


if __name__ == "__main__":
    out = Path(__file__).with_name("output.txt")
    with out.open("w") as f, contextlib.redirect_stdout(Tee(sys.stdout, f)):
        main()
