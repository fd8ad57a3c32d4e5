"""Section 7.5, Batch Normalization: the math from scratch, the layer, and the two LeNets.

The math lives in the plain function :func:`batch_norm`; :class:`BatchNorm` only does the
bookkeeping (parameters, moving statistics, device), as the book's design note recommends.

Below the book's code, its hybridizable twin: :func:`batch_norm_hybrid` (the same math for
``F`` = ndarray or symbol) and :class:`HybridBatchNorm`, whose moving statistics are Parameters
kept up to date through :mod:`.stateful`, so that ``lenet_bn_scratch_hybrid`` can be hybridized.
"""
from __future__ import annotations

from typing import Callable, Optional

from mxnet import autograd, init, np, symbol
from mxnet.gluon import nn

from ._registry import register_book_model
from .common import check_positive_int, sequential
from .stateful import ModeAwareHybridBlock, ModeAwareHybridSequential, require_mode_aware, \
    update_state

__all__ = ["batch_norm", "BatchNorm", "lenet_with_batch_norm", "lenet_bn_scratch", "lenet_bn",
           "batch_norm_hybrid", "HybridBatchNorm"]


def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum):
    """Section 7.5.3: batch normalization of ``X``; returns ``(Y, moving_mean, moving_var)``.

    Training mode (inside ``autograd.record()``) normalizes with the minibatch statistics and
    updates the moving averages as ``momentum * moving + (1 - momentum) * batch``; prediction mode
    normalizes with the moving statistics. Section 7.5 uses ``eps=1e-12, momentum=0.9``, the older
    section 5.11 ``eps=1e-5``.

    Args:
        X: the input, ``(N, C)`` after a dense layer or ``(N, C, H, W)`` after a convolution.
        gamma: the scale, shaped like the statistics.
        beta: the shift, same shape.
        moving_mean: the moving mean.
        moving_var: the moving variance.
        eps: added to the variance before the square root.
        momentum: weight of the old moving statistics in the update.
    """
    if len(X.shape) not in (2, 4):  # checked in both modes (the book's code fails only later)
        raise ValueError(
            f"batch_norm normalizes 2-D inputs (batch, features) after a dense layer or 4-D "
            f"inputs (batch, channels, height, width) after a convolution; got a "
            f"{len(X.shape)}-D input of shape {X.shape}")
    # Use autograd to determine whether the current mode is training mode or
    # prediction mode
    if not autograd.is_training():
        # If it is the prediction mode, directly use the mean and variance
        # obtained from the incoming moving average
        X_hat = (X - moving_mean) / np.sqrt(moving_var + eps)
    else:
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
    them; the package's own saving (``gluon_modern_cnn.training.checkpoint``) does.

    Args:
        num_features: outputs of a dense layer or output channels of a convolution.
        num_dims: 2 after a dense layer, 4 after a convolution.
        eps: as :func:`batch_norm`'s (1e-12 in section 7.5).
        momentum: as :func:`batch_norm`'s (0.9).
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
                          hybrid: bool = False,
                          container: Optional[Callable[[], nn.Sequential]] = None) -> nn.Sequential:
    """Section 7.5.4: LeNet with ``norm(num_features, num_dims)`` after every conv/dense layer.

    ``container`` makes the empty network (default: ``nn.Sequential``, or
    ``nn.HybridSequential`` when ``hybrid``).

    Args:
        norm: builds the normalization layer from ``(num_features, num_dims)``.
        num_classes: width of the output layer (10: Fashion-MNIST).
        hybrid: build the twin from HybridBlocks (``nn.HybridSequential``), which can be
            hybridized.
        container: makes the empty network (overrides ``hybrid``).
    """
    net = container() if container is not None else sequential(hybrid=hybrid)
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


@register_book_model("lenet_bn_scratch", family="lenet", section="7.5", input_size=28,
                     book_settings="7.5")
def lenet_bn_scratch(*, num_classes: int = 10, eps: float = 1e-12, momentum: float = 0.9,
                     hybrid: bool = False) -> nn.Sequential:
    """Section 7.5.4: LeNet with the from-scratch batch norm.

    The book's ``BatchNorm`` (an ``nn.Block``) by default; ``hybrid=True`` builds the twin with
    :class:`HybridBatchNorm` in a :class:`ModeAwareHybridSequential`, which can be hybridized.

    Args:
        num_classes: width of the output layer (10: Fashion-MNIST).
        eps: the batch norms' epsilon (section 7.5: 1e-12).
        momentum: the batch norms' momentum (0.9).
        hybrid: build the twin (:class:`HybridBatchNorm` layers in a
            :class:`ModeAwareHybridSequential`), which can be hybridized.
    """
    layer = HybridBatchNorm if hybrid else BatchNorm
    return lenet_with_batch_norm(
        lambda num_features, num_dims: layer(num_features, num_dims=num_dims, eps=eps,
                                             momentum=momentum),
        num_classes=num_classes, container=ModeAwareHybridSequential if hybrid else nn.Sequential)


@register_book_model("lenet_bn", family="lenet", section="7.5", input_size=28,
                     book_settings="7.5")
def lenet_bn(*, num_classes: int = 10, hybrid: bool = False) -> nn.Sequential:
    """Section 7.5.5: LeNet with Gluon's ``nn.BatchNorm`` (the concise implementation).

    Args:
        num_classes: width of the output layer (10: Fashion-MNIST).
        hybrid: build the twin from HybridBlocks (``nn.HybridSequential``), which can be
            hybridized.
    """
    return lenet_with_batch_norm(lambda num_features, num_dims: nn.BatchNorm(),
                                 num_classes=num_classes, hybrid=hybrid)


# ---------------------------------------------------------------------------------------------
# The hybridizable twin of the book's layer
# ---------------------------------------------------------------------------------------------

def _channel_ops(F, X):
    """View ``X`` as ``(N*C, H*W)`` and return it with a per-channel mean and broadcast for it.

    Why not ``X.mean(axis=(0, 2, 3))`` and broadcasting arithmetic, as in the book: on the CPU,
    MXNet 1.9 reduces over those axes with a generic kernel 5-10x slower than a matrix product
    with a vector of ones, and the backward of every broadcasting ``-``, ``*``, ``/`` reduces the
    same way (72% of the book's LeNet step). Here both directions are ``dot`` with ones, whose
    backward is again a matrix product, and the arithmetic is between same-shape arrays.
    """
    flat = F.npx.reshape(X, (-5, -1))                   # (N*C, H*W); (N*C, 1) for 2-D input
    # Ones shaped like a row and a column of `flat`, as graph constants (BlockGrad: no gradient
    # into X). Legacy slice_axis: numpy slicing of a reshaped oneDNN-layout array fails in 1.9.
    const = F.BlockGrad(flat.as_nd_ndarray())
    ones_row = F.ones_like(F.slice_axis(const, axis=0, begin=0, end=1)).as_np_ndarray()  # (1, HW)
    ones_col = F.ones_like(F.slice_axis(const, axis=1, begin=0, end=1)).as_np_ndarray()  # (NC, 1)
    mean_col = ones_row.T / F.np.sum(ones_row)          # (H*W, 1) of 1 / (H*W)

    def by_sample_and_channel(col):                     # (N*C, 1) -> (N, C)
        return F.npx.reshape_like(col, X, lhs_begin=0, lhs_end=2, rhs_begin=0, rhs_end=2)
    ones_nc = by_sample_and_channel(ones_col)

    def channel_mean(Z):
        """(N*C, H*W) -> (1, C): mean over samples and positions."""
        return by_sample_and_channel(F.np.dot(Z, mean_col)).mean(axis=0, keepdims=True)

    def per_channel(v):
        """(1, C[, 1, 1]) -> (N*C, H*W), each channel's value repeated."""
        return F.np.dot(F.npx.reshape(ones_nc * F.npx.reshape(v, (1, -1)), (-1, 1)), ones_row)

    return flat, channel_mean, per_channel


def batch_norm_hybrid(F, X, gamma, beta, moving_mean, moving_var, *, eps: float, momentum: float):
    """Section 7.5.3's ``batch_norm`` for ``F`` = ``mxnet.ndarray`` or ``mxnet.symbol``.

    The book's math and return value ``(Y, moving_mean, moving_var)``, for 2-D ``(N, C)`` and 4-D
    ``(N, C, H, W)`` input (statistics per channel, axis 1); the moving statistics change only in
    training mode. Hybridized, the ``if autograd.is_training()`` needs a
    :class:`ModeAwareHybridBlock` around it (one graph per mode).

    Args:
        F: ``mxnet.ndarray`` or ``mxnet.symbol`` (``hybrid_forward``'s ``F``).
        X, gamma, beta, moving_mean, moving_var, eps, momentum: as :func:`batch_norm`'s.
    """
    flat, channel_mean, per_channel = _channel_ops(F, X)
    if not autograd.is_training():
        X_hat = (flat - per_channel(moving_mean)) / per_channel(F.np.sqrt(moving_var + eps))
    else:
        mean = channel_mean(flat)
        centered = flat - per_channel(mean)
        var = channel_mean(F.np.square(centered))
        X_hat = centered / per_channel(F.np.sqrt(var + eps))
        # The statistics come out as (1, C); the moving ones keep gamma's shape.
        mean = F.npx.reshape_like(mean, moving_mean)
        var = F.npx.reshape_like(var, moving_var)
        moving_mean = momentum * moving_mean + (1.0 - momentum) * mean
        moving_var = momentum * moving_var + (1.0 - momentum) * var
    Y = per_channel(gamma) * X_hat + per_channel(beta)
    return F.npx.reshape_like(Y, X), moving_mean, moving_var


class HybridBatchNorm(ModeAwareHybridBlock):
    """Section 7.5.3's ``BatchNorm`` as a HybridBlock, its moving statistics as Parameters.

    The same arguments, attribute names and parameter shapes as the book's layer, so a file that
    :func:`gluon_modern_cnn.save_parameters` wrote from either loads into the other. The moving
    statistics start at 0, as in the book, have ``grad_req='null'`` (no gradient, no optimizer
    update) and are written by ``save_parameters``. Hybridized inside a network, the network's
    outermost block must be a :class:`ModeAwareHybridBlock` (e.g. ``ModeAwareHybridSequential``).

    Args:
        num_features, num_dims, eps, momentum: as :class:`BatchNorm`'s.
    """

    def __init__(self, num_features: int, num_dims: int, *, eps: float = 1e-12,
                 momentum: float = 0.9, **kwargs):
        super().__init__(**kwargs)
        shape = _stat_shape(num_features, num_dims)
        self.eps, self.momentum = eps, momentum
        self.gamma = self.params.get('gamma', shape=shape, init=init.One())
        self.beta = self.params.get('beta', shape=shape, init=init.Zero())
        self.moving_mean = self.params.get('moving_mean', shape=shape, init=init.Zero(),
                                           grad_req='null', differentiable=False)
        self.moving_var = self.params.get('moving_var', shape=shape, init=init.Zero(),
                                          grad_req='null', differentiable=False)

    def hybrid_forward(self, F, X, gamma, beta, moving_mean, moving_var):
        require_mode_aware(F, self)
        if F is not symbol and X.ndim < 2:
            raise ValueError(f"{self.name} normalizes axis 1 of (batch, channels, ...) input; got "
                             f"shape {X.shape}: give it a batch axis (X.reshape(1, -1))")
        Y, new_mean, new_var = batch_norm_hybrid(F, X, gamma, beta, moving_mean, moving_var,
                                                 eps=self.eps, momentum=self.momentum)
        if autograd.is_training():
            update_state(F, self.moving_mean, new_mean)
            update_state(F, self.moving_var, new_var)
        return Y
