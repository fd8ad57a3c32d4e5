"""Section 7.5, Batch Normalization: the math from scratch, the layer, and the two LeNets.

The math lives in the plain function :func:`batch_norm`; :class:`BatchNorm` only does the
bookkeeping (parameters, moving statistics, device), as the book's design note recommends.
"""
from __future__ import annotations

from typing import Callable

from mxnet import autograd, init, np
from mxnet.gluon import nn

from ..registry import register_book_model, register_model
from .common import check_positive_int, sequential

__all__ = ["batch_norm", "BatchNorm", "lenet_with_batch_norm", "lenet_bn_scratch", "lenet_bn"]


def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum):
    """Section 7.5.3: batch normalization of ``X``; returns ``(Y, moving_mean, moving_var)``.

    Training mode (inside ``autograd.record()``) normalizes with the minibatch statistics and
    updates the moving averages as ``momentum * moving + (1 - momentum) * batch``; prediction mode
    normalizes with the moving statistics. Section 7.5 uses ``eps=1e-12, momentum=0.9``, the older
    section 5.11 ``eps=1e-5``.
    """
    # Use autograd to determine whether the current mode is training mode or
    # prediction mode
    if not autograd.is_training():
        # If it is the prediction mode, directly use the mean and variance
        # obtained from the incoming moving average
        X_hat = (X - moving_mean) / np.sqrt(moving_var + eps)
    else:
        if len(X.shape) not in (2, 4):
            raise ValueError(
                f"batch_norm normalizes 2-D inputs (batch, features) after a dense layer or 4-D "
                f"inputs (batch, channels, height, width) after a convolution; got a "
                f"{len(X.shape)}-D input of shape {X.shape}")
        if len(X.shape) == 2:
            # When using a fully connected layer, calculate the mean and
            # variance on the feature dimension
            mean = X.mean(axis=0)
            var = ((X - mean) ** 2).mean(axis=0)
        else:
            # When using a two-dimensional convolutional layer, calculate the
            # mean and variance on the channel dimension (axis=1). Here we
            # need to maintain the shape of 'X', so that the broadcast
            # operation can be carried out later
            mean = X.mean(axis=(0, 2, 3), keepdims=True)
            var = ((X - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True)
        # In training mode, the current mean and variance are used for the
        # standardization
        X_hat = (X - mean) / np.sqrt(var + eps)
        # Update the mean and variance of the moving average
        moving_mean = momentum * moving_mean + (1.0 - momentum) * mean
        moving_var = momentum * moving_var + (1.0 - momentum) * var
    Y = gamma * X_hat + beta  # Scale and shift
    return Y, moving_mean, moving_var


def _stat_shape(num_features: int, num_dims: int):
    check_positive_int(num_features, "num_features")
    if num_dims not in (2, 4):
        raise ValueError(f"num_dims must be 2 (after a dense layer) or 4 (after a convolutional "
                         f"layer); got {num_dims!r}")
    return (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)


class BatchNorm(nn.Block):
    """Section 7.5.3: the batch normalization layer from scratch (an ``nn.Block``, as in the book).

    Its moving statistics are plain arrays, not Parameters, so ``save_parameters`` does not store
    them; the package's own saving (``gluon_modern_cnn.checkpoint``) does.
    """
    # num_features: the number of outputs for a fully-connected layer
    # or the number of output channels for a convolutional layer.
    # num_dims: 2 for a fully-connected layer and 4 for a convolutional layer.
    def __init__(self, num_features, num_dims, *, eps: float = 1e-12, momentum: float = 0.9,
                 **kwargs):
        super().__init__(**kwargs)
        shape = _stat_shape(num_features, num_dims)
        self.eps, self.momentum = eps, momentum
        # The scale parameter and the shift parameter involved in gradient
        # finding and iteration are initialized to 1 and 0 respectively
        self.gamma = self.params.get('gamma', shape=shape, init=init.One())
        self.beta = self.params.get('beta', shape=shape, init=init.Zero())
        # All the variables not involved in gradient finding and iteration are
        # initialized to 0 on the CPU
        self.moving_mean = np.zeros(shape)
        self.moving_var = np.zeros(shape)

    def forward(self, X):
        # If X is not on the CPU, copy 'moving_mean' and 'moving_var' to the
        # device where 'X' is located
        if self.moving_mean.ctx != X.ctx:
            self.moving_mean = self.moving_mean.copyto(X.ctx)
            self.moving_var = self.moving_var.copyto(X.ctx)
        # Save the updated 'moving_mean' and 'moving_var'
        Y, self.moving_mean, self.moving_var = batch_norm(
            X, self.gamma.data(), self.beta.data(), self.moving_mean,
            self.moving_var, eps=self.eps, momentum=self.momentum)
        return Y


def lenet_with_batch_norm(norm: Callable[[int, int], nn.Block], *, num_classes: int = 10,
                          hybrid: bool = False) -> nn.Sequential:
    """Section 7.5.4: LeNet with ``norm(num_features, num_dims)`` after every conv/dense layer."""
    net = sequential(hybrid=hybrid)
    net.add(nn.Conv2D(6, kernel_size=5),
            norm(6, 4),
            nn.Activation('sigmoid'),
            nn.MaxPool2D(pool_size=2, strides=2),
            nn.Conv2D(16, kernel_size=5),
            norm(16, 4),
            nn.Activation('sigmoid'),
            nn.MaxPool2D(pool_size=2, strides=2),
            nn.Dense(120),
            norm(120, 2),
            nn.Activation('sigmoid'),
            nn.Dense(84),
            norm(84, 2),
            nn.Activation('sigmoid'),
            nn.Dense(num_classes))
    return net


@register_model("lenet_bn_scratch", family="lenet", section="7.5", input_size=28,
                book_settings="7.5")
def lenet_bn_scratch(*, num_classes: int = 10, eps: float = 1e-12,
                     momentum: float = 0.9) -> nn.Sequential:
    """Section 7.5.4: LeNet with the from-scratch ``BatchNorm`` (an ``nn.Block``, not hybridizable)."""
    return lenet_with_batch_norm(
        lambda num_features, num_dims: BatchNorm(num_features, num_dims=num_dims, eps=eps,
                                                 momentum=momentum),
        num_classes=num_classes)


@register_book_model("lenet_bn", family="lenet", section="7.5", input_size=28,
                     book_settings="7.5")
def lenet_bn(*, num_classes: int = 10, hybrid: bool = False) -> nn.Sequential:
    """Section 7.5.5: LeNet with Gluon's ``nn.BatchNorm`` (the concise implementation)."""
    return lenet_with_batch_norm(lambda num_features, num_dims: nn.BatchNorm(),
                                 num_classes=num_classes, hybrid=hybrid)
