"""The older edition (gluonbook; sections 5.11 batch normalization, 5.12 ResNet, 5.13 DenseNet)
with its legacy ``nd`` API: ``import gluon_modern_cnn.gluonbook as gb`` in place of
``import gluonbook as gb``.

Importing this module is the reader's edition switch: it turns MXNet's numpy semantics off for the
importing thread (``npx.reset_np()``), so the edition's ``nd.sqrt``, ``nd.relu``, ``nd.concat``
and Gluon layers fed ``nd`` arrays work as they did. MXNet keeps the setting per thread; call
:func:`activate` in another thread that runs the edition's code. An array of the other kind
reaching an operator raises one message naming the switch (see
``gluon_modern_cnn.runtime.compat.explain_array_mode_errors``).

What the edition's cells call from ``gb``: :func:`try_gpu`, :func:`load_data_fashion_mnist`
(``NDArray`` batches) and :func:`train_ch5`; its blocks are here as it wrote them:
:func:`batch_norm` / :class:`BatchNorm` (``eps=1e-5``, ``momentum=0.9``, moving statistics
starting at 0), :class:`Residual` and :class:`DenseBlock` (which prints each concatenation, as the
edition's did).
"""
from __future__ import annotations

from .runtime import compat as _compat
from . import data
from .runtime.devices import try_gpu
from .training.loop import train_ch5

mx = _compat.import_mxnet()
from mxnet import autograd, init, nd  # noqa: E402
from mxnet.gluon import nn  # noqa: E402

__all__ = ["activate", "try_gpu", "load_data_fashion_mnist", "train_ch5", "batch_norm",
           "BatchNorm", "Residual", "conv_block", "DenseBlock", "transition_block"]


def activate() -> None:
    """Legacy ``nd`` semantics for the calling thread (the older edition's)."""
    mx.npx.reset_np()


activate()


def load_data_fashion_mnist(batch_size, resize=None, root=None):
    """Fashion-MNIST as ``(train_iter, test_iter)`` of ``NDArray`` batches (older edition 3.5):
    images float32 ``(batch, 1, H, W)`` in [0, 1] after the edition's ``Resize(resize)`` +
    ``ToTensor()``, labels int32; the training set shuffled. Batches are prepared in the calling
    thread (no worker threads or processes)."""
    return data.load_data_fashion_mnist(batch_size, resize, root=root, fast=True, prefetch=0)


def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum):
    """Older edition 5.11.2: batch normalization from scratch on ``nd`` arrays."""
    # Use autograd to determine whether the current mode is training mode or prediction mode.
    if not autograd.is_training():
        # If it is the prediction mode, directly use the mean and variance obtained
        # from the incoming moving average.
        X_hat = (X - moving_mean) / nd.sqrt(moving_var + eps)
    else:
        assert len(X.shape) in (2, 4)
        if len(X.shape) == 2:
            # When using a fully connected layer, calculate the mean and variance on the
            # feature dimension.
            mean = X.mean(axis=0)
            var = ((X - mean) ** 2).mean(axis=0)
        else:
            # When using a two-dimensional convolutional layer, calculate the mean and variance
            # on the channel dimension (axis=1). Here we need to maintain the shape of X, so
            # that the broadcast operation can be carried out later.
            mean = X.mean(axis=(0, 2, 3), keepdims=True)
            var = ((X - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True)
        # In training mode, the current mean and variance are used for the standardization.
        X_hat = (X - mean) / nd.sqrt(var + eps)
        # Update the mean and variance of the moving average.
        moving_mean = momentum * moving_mean + (1.0 - momentum) * mean
        moving_var = momentum * moving_var + (1.0 - momentum) * var
    Y = gamma * X_hat + beta  # Scale and shift.
    return Y, moving_mean, moving_var


class BatchNorm(nn.Block):
    """Older edition 5.11.2: the scratch batch-norm layer (``eps=1e-5``, ``momentum=0.9``)."""

    def __init__(self, num_features, num_dims, **kwargs):
        super(BatchNorm, self).__init__(**kwargs)
        if num_dims == 2:
            shape = (1, num_features)
        else:
            shape = (1, num_features, 1, 1)
        # The scale parameter and the shift parameter involved in gradient finding and
        # iteration are initialized to 1 and 0 respectively.
        self.gamma = self.params.get('gamma', shape=shape, init=init.One())
        self.beta = self.params.get('beta', shape=shape, init=init.Zero())
        # All the variables not involved in gradient finding and iteration are initialized to 0
        # on the CPU.
        self.moving_mean = nd.zeros(shape)
        self.moving_var = nd.zeros(shape)

    def forward(self, X):
        # If X is not on the CPU, copy moving_mean and moving_var to the device where X is.
        if self.moving_mean.context != X.context:
            self.moving_mean = self.moving_mean.copyto(X.context)
            self.moving_var = self.moving_var.copyto(X.context)
        # Save the updated moving_mean and moving_var.
        Y, self.moving_mean, self.moving_var = batch_norm(
            X, self.gamma.data(), self.beta.data(), self.moving_mean,
            self.moving_var, eps=1e-5, momentum=0.9)
        return Y


class Residual(nn.Block):
    """Older edition 5.12.1: the residual block on ``nd`` arrays."""

    def __init__(self, num_channels, use_1x1conv=False, strides=1, **kwargs):
        super(Residual, self).__init__(**kwargs)
        self.conv1 = nn.Conv2D(num_channels, kernel_size=3, padding=1, strides=strides)
        self.conv2 = nn.Conv2D(num_channels, kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.Conv2D(num_channels, kernel_size=1, strides=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.BatchNorm()
        self.bn2 = nn.BatchNorm()

    def forward(self, X):
        Y = nd.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        return nd.relu(Y + X)


def conv_block(num_channels):
    """Older edition 5.13.1: batch normalization, ReLU and a 3x3 convolution."""
    blk = nn.Sequential()
    blk.add(nn.BatchNorm(), nn.Activation('relu'),
            nn.Conv2D(num_channels, kernel_size=3, padding=1))
    return blk


class DenseBlock(nn.Block):
    """Older edition 5.13.1: the dense block, printing each step's shapes as the edition did."""

    def __init__(self, num_convs, num_channels, **kwargs):
        super(DenseBlock, self).__init__(**kwargs)
        self.net = nn.Sequential()
        for _ in range(num_convs):
            self.net.add(conv_block(num_channels))

    def forward(self, X):
        for blk in self.net:
            Y = blk(X)
            print("X.shape: {0} --> Y.shape: {1}".format(X.shape, Y.shape))
            # Concatenate the input and output of each block on the channel dimension.
            X = nd.concat(X, Y, dim=1)
        return X


def transition_block(num_channels):
    """Older edition 5.13.2: a 1x1 convolution and 2x2 average pooling with stride 2."""
    blk = nn.Sequential()
    blk.add(nn.BatchNorm(), nn.Activation('relu'),
            nn.Conv2D(num_channels, kernel_size=1),
            nn.AvgPool2D(pool_size=2, strides=2))
    return blk
