"""The 1.0 edition's chapter 8, "Modern Convolutional Neural Networks" (sections 8.1-8.8), as its
MXNet cells write it: every network is a
:class:`~gluon_modern_cnn.models.edition10_base.Classifier` (``d2l.Classifier``) that builds
``self.net`` and initializes itself, with the 1.0 edition's choices where they differ from 0.17
(``b1`` ... ``b5`` stems as methods, AvgPool in both batch-norm LeNets, a scratch ``moving_var``
starting at 1 with ``eps=1e-12`` and ``momentum=0.1``), plus the new material:
:class:`ResNeXtBlock` (8.6) and :class:`AnyNet` / :class:`RegNetX32` (8.8).

Registered as ``d2l10_<name>`` (``d2l10_alexnet``, ``d2l10_resnet18``, ``d2l10_regnetx32``, ...):
the prefix names the edition, so the 0.17 models keep their names.

RegNetX32 twice. The 1.0 MXNet cell's ``AnyNet.stage`` calls
``d2l.ResNeXtBlock(num_channels, num_channels, groups, bot_mul)`` for every block after a stage's
first, one argument more than the block takes: ``groups=num_channels``, ``bot_mul=groups`` (16) and
``use_1x1conv=bot_mul`` (1, true), so those blocks have 16x wide bottlenecks and a projection
shortcut. That network (:class:`RegNetX32`, ``d2l10_regnetx32``) has 6,291,594 trainable
parameters (6,326,282 with the batch norms' running statistics); the network the text describes
and the PyTorch and TensorFlow cells build (:class:`RegNetX32Intended`,
``d2l10_regnetx32_intended``, ``ResNeXtBlock(num_channels, groups, bot_mul)``) has 179,290
(183,226).
"""
from __future__ import annotations

from mxnet import autograd, init, np, npx
from mxnet.gluon import nn

from .edition10_base import Classifier, add_to_class
from ._registry import register_model
from .densenet import DenseBlock, transition_block
from .nin import nin_block
from .resnet import Residual
from .vgg import vgg_block

__all__ = ["AlexNet", "VGG", "NiN", "Inception", "Inception10", "GoogleNet", "batch_norm",
           "batch_norm10", "BatchNorm", "BatchNorm10",
           "BNLeNetScratch", "BNLeNet", "ResNet", "ResNet18", "ResNeXtBlock", "DenseNet",
           "AnyNet", "RegNetX32", "AnyNetIntended", "RegNetX32Intended", "EDITION10_MODELS"]


class AlexNet(Classifier):
    """Section 8.1.2: AlexNet.

    Args:
        lr: the learning rate of the SGD optimizer ``configure_optimizers`` returns.
        num_classes: width of the output layer.
    """

    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential()
        self.net.add(
            nn.Conv2D(96, kernel_size=11, strides=4, activation='relu'),
            nn.MaxPool2D(pool_size=3, strides=2),
            nn.Conv2D(256, kernel_size=5, padding=2, activation='relu'),
            nn.MaxPool2D(pool_size=3, strides=2),
            nn.Conv2D(384, kernel_size=3, padding=1, activation='relu'),
            nn.Conv2D(384, kernel_size=3, padding=1, activation='relu'),
            nn.Conv2D(256, kernel_size=3, padding=1, activation='relu'),
            nn.MaxPool2D(pool_size=3, strides=2),
            nn.Dense(4096, activation='relu'), nn.Dropout(0.5),
            nn.Dense(4096, activation='relu'), nn.Dropout(0.5),
            nn.Dense(num_classes))
        self.net.initialize(init.Xavier())


class VGG(Classifier):
    """Section 8.2.2: VGG from ``arch``, a sequence of ``(num_convs, num_channels)`` blocks.

    Args:
        arch: ``(num_convs, num_channels)`` per VGG block.
        lr: the learning rate of the SGD optimizer ``configure_optimizers`` returns.
        num_classes: width of the output layer.
    """

    def __init__(self, arch, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential()
        for (num_convs, num_channels) in arch:
            self.net.add(vgg_block(num_convs, num_channels))
        self.net.add(nn.Dense(4096, activation='relu'), nn.Dropout(0.5),
                     nn.Dense(4096, activation='relu'), nn.Dropout(0.5),
                     nn.Dense(num_classes))
        self.net.initialize(init.Xavier())


class NiN(Classifier):
    """Section 8.3.2: Network in Network.

    Args:
        lr: the learning rate of the SGD optimizer ``configure_optimizers`` returns.
        num_classes: width of the output layer.
    """

    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential()
        self.net.add(
            nin_block(96, kernel_size=11, strides=4, padding=0),
            nn.MaxPool2D(pool_size=3, strides=2),
            nin_block(256, kernel_size=5, strides=1, padding=2),
            nn.MaxPool2D(pool_size=3, strides=2),
            nin_block(384, kernel_size=3, strides=1, padding=1),
            nn.MaxPool2D(pool_size=3, strides=2),
            nn.Dropout(0.5),
            nin_block(num_classes, kernel_size=3, strides=1, padding=1),
            nn.GlobalAvgPool2D(),
            nn.Flatten())
        self.net.initialize(init.Xavier())


class Inception(nn.Block):
    """Section 8.4.1: the Inception block as 1.0 writes it (branches ``b1_1`` ... ``b4_2``).

    Args:
        c1: output channels of the 1x1 branch.
        c2: ``(reduce, out)`` channels of the 1x1-then-3x3 branch.
        c3: ``(reduce, out)`` channels of the 1x1-then-5x5 branch.
        c4: output channels of the pooling branch's 1x1 convolution.
        **kwargs: passed to ``nn.Block``.
    """

    # c1--c4 are the number of output channels for each branch
    def __init__(self, c1, c2, c3, c4, **kwargs):
        super(Inception, self).__init__(**kwargs)
        # Branch 1
        self.b1_1 = nn.Conv2D(c1, kernel_size=1, activation='relu')
        # Branch 2
        self.b2_1 = nn.Conv2D(c2[0], kernel_size=1, activation='relu')
        self.b2_2 = nn.Conv2D(c2[1], kernel_size=3, padding=1, activation='relu')
        # Branch 3
        self.b3_1 = nn.Conv2D(c3[0], kernel_size=1, activation='relu')
        self.b3_2 = nn.Conv2D(c3[1], kernel_size=5, padding=2, activation='relu')
        # Branch 4
        self.b4_1 = nn.MaxPool2D(pool_size=3, strides=1, padding=1)
        self.b4_2 = nn.Conv2D(c4, kernel_size=1, activation='relu')

    def forward(self, x):
        b1 = self.b1_1(x)
        b2 = self.b2_2(self.b2_1(x))
        b3 = self.b3_2(self.b3_1(x))
        b4 = self.b4_2(self.b4_1(x))
        return np.concatenate((b1, b2, b3, b4), axis=1)


class GoogleNet(Classifier):
    """Section 8.4.2: GoogLeNet, five stages ``b1`` ... ``b5`` and a dense layer.

    Args:
        lr: the learning rate of the SGD optimizer ``configure_optimizers`` returns.
        num_classes: width of the output layer.
    """

    def b1(self):
        net = nn.Sequential()
        net.add(nn.Conv2D(64, kernel_size=7, strides=2, padding=3, activation='relu'),
                nn.MaxPool2D(pool_size=3, strides=2, padding=1))
        return net

    def b2(self):
        net = nn.Sequential()
        net.add(nn.Conv2D(64, kernel_size=1, activation='relu'),
                nn.Conv2D(192, kernel_size=3, padding=1, activation='relu'),
                nn.MaxPool2D(pool_size=3, strides=2, padding=1))
        return net

    def b3(self):
        net = nn.Sequential()
        net.add(Inception(64, (96, 128), (16, 32), 32),
                Inception(128, (128, 192), (32, 96), 64),
                nn.MaxPool2D(pool_size=3, strides=2, padding=1))
        return net

    def b4(self):
        net = nn.Sequential()
        net.add(Inception(192, (96, 208), (16, 48), 64),
                Inception(160, (112, 224), (24, 64), 64),
                Inception(128, (128, 256), (24, 64), 64),
                Inception(112, (144, 288), (32, 64), 64),
                Inception(256, (160, 320), (32, 128), 128),
                nn.MaxPool2D(pool_size=3, strides=2, padding=1))
        return net

    def b5(self):
        net = nn.Sequential()
        net.add(Inception(256, (160, 320), (32, 128), 128),
                Inception(384, (192, 384), (48, 128), 128),
                nn.GlobalAvgPool2D())
        return net

    def __init__(self, lr=0.1, num_classes=10):
        super(GoogleNet, self).__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential()
        self.net.add(self.b1(), self.b2(), self.b3(), self.b4(), self.b5(),
                     nn.Dense(num_classes))
        self.net.initialize(init.Xavier())


def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum):
    """Section 8.5.3: batch normalization from scratch, 1.0's way (``momentum`` is the weight of
    the new statistics: ``moving = (1 - momentum) * moving + momentum * new``).

    Args:
        X: a batch, 2-D (fully connected) or 4-D (convolutional).
        gamma: scale, one per feature or channel.
        beta: shift, one per feature or channel.
        moving_mean: the running mean used in prediction.
        moving_var: the running variance used in prediction.
        eps: added to the variance before the square root.
        momentum: weight of the new batch statistics in the running ones.

    Returns:
        ``(Y, moving_mean, moving_var)``.
    """
    # Use autograd to determine whether we are in training mode
    if not autograd.is_training():
        # In prediction mode, use mean and variance obtained by moving average
        X_hat = (X - moving_mean) / np.sqrt(moving_var + eps)
    else:
        assert len(X.shape) in (2, 4)
        if len(X.shape) == 2:
            # When using a fully connected layer, calculate the mean and
            # variance on the feature dimension
            mean = X.mean(axis=0)
            var = ((X - mean) ** 2).mean(axis=0)
        else:
            # When using a two-dimensional convolutional layer, calculate the
            # mean and variance on the channel dimension (axis=1)
            mean = X.mean(axis=(0, 2, 3), keepdims=True)
            var = ((X - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True)
        # In training mode, the current mean and variance are used
        X_hat = (X - mean) / np.sqrt(var + eps)
        # Update the mean and variance using moving average
        moving_mean = (1.0 - momentum) * moving_mean + momentum * mean
        moving_var = (1.0 - momentum) * moving_var + momentum * var
    Y = gamma * X_hat + beta  # Scale and shift
    return Y, moving_mean, moving_var


class BatchNorm(nn.Block):
    """Section 8.5.3: the scratch batch-norm layer of 1.0 (``moving_var`` starts at 1,
    ``eps=1e-12``, ``momentum=0.1``).

    Args:
        num_features: outputs of a fully connected layer, or channels of a convolution.
        num_dims: 2 for a fully connected layer, 4 for a convolutional one.
        **kwargs: passed to ``nn.Block``.
    """

    # `num_features`: the number of outputs for a fully connected layer
    # or the number of output channels for a convolutional layer. `num_dims`:
    # 2 for a fully connected layer and 4 for a convolutional layer
    def __init__(self, num_features, num_dims, **kwargs):
        super().__init__(**kwargs)
        if num_dims == 2:
            shape = (1, num_features)
        else:
            shape = (1, num_features, 1, 1)
        # The scale parameter and the shift parameter (model parameters) are
        # initialized to 1 and 0, respectively
        self.gamma = self.params.get('gamma', shape=shape, init=init.One())
        self.beta = self.params.get('beta', shape=shape, init=init.Zero())
        # The variables that are not model parameters are initialized to 0 and 1
        self.moving_mean = np.zeros(shape)
        self.moving_var = np.ones(shape)

    def forward(self, X):
        # If `X` is not on the main memory, copy `moving_mean` and
        # `moving_var` to the device where `X` is located
        if self.moving_mean.ctx != X.ctx:
            self.moving_mean = self.moving_mean.copyto(X.ctx)
            self.moving_var = self.moving_var.copyto(X.ctx)
        # Save the updated `moving_mean` and `moving_var`
        Y, self.moving_mean, self.moving_var = batch_norm(
            X, self.gamma.data(), self.beta.data(), self.moving_mean,
            self.moving_var, eps=1e-12, momentum=0.1)
        return Y


# The package's top level keeps the 0.17 names for the 0.17 blocks; these are the 1.0 ones there.
Inception10, batch_norm10, BatchNorm10 = Inception, batch_norm, BatchNorm


class BNLeNetScratch(Classifier):
    """Section 8.5.4: LeNet with the scratch batch normalization, AvgPool as in 1.0.

    Args:
        lr: the learning rate of the SGD optimizer ``configure_optimizers`` returns.
        num_classes: width of the output layer.
    """

    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential()
        self.net.add(
            nn.Conv2D(6, kernel_size=5), BatchNorm(6, num_dims=4),
            nn.Activation('sigmoid'),
            nn.AvgPool2D(pool_size=2, strides=2),
            nn.Conv2D(16, kernel_size=5), BatchNorm(16, num_dims=4),
            nn.Activation('sigmoid'),
            nn.AvgPool2D(pool_size=2, strides=2), nn.Dense(120),
            BatchNorm(120, num_dims=2), nn.Activation('sigmoid'),
            nn.Dense(84), BatchNorm(84, num_dims=2),
            nn.Activation('sigmoid'), nn.Dense(num_classes))
        self.initialize()


class BNLeNet(Classifier):
    """Section 8.5.5: LeNet with Gluon's ``nn.BatchNorm``, AvgPool as in 1.0.

    Args:
        lr: the learning rate of the SGD optimizer ``configure_optimizers`` returns.
        num_classes: width of the output layer.
    """

    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential()
        self.net.add(
            nn.Conv2D(6, kernel_size=5), nn.BatchNorm(),
            nn.Activation('sigmoid'),
            nn.AvgPool2D(pool_size=2, strides=2),
            nn.Conv2D(16, kernel_size=5), nn.BatchNorm(),
            nn.Activation('sigmoid'),
            nn.AvgPool2D(pool_size=2, strides=2),
            nn.Dense(120), nn.BatchNorm(), nn.Activation('sigmoid'),
            nn.Dense(84), nn.BatchNorm(), nn.Activation('sigmoid'),
            nn.Dense(num_classes))
        self.initialize()


class ResNet(Classifier):
    """Section 8.6.3: ResNet from ``arch``, a sequence of ``(num_residuals, num_channels)``.

    Args:
        arch: ``(num_residuals, num_channels)`` per stage after the ``b1`` stem.
        lr: the learning rate of the SGD optimizer ``configure_optimizers`` returns.
        num_classes: width of the output layer.
    """

    def b1(self):
        net = nn.Sequential()
        net.add(nn.Conv2D(64, kernel_size=7, strides=2, padding=3),
                nn.BatchNorm(), nn.Activation('relu'),
                nn.MaxPool2D(pool_size=3, strides=2, padding=1))
        return net

    def block(self, num_residuals, num_channels, first_block=False):
        blk = nn.Sequential()
        for i in range(num_residuals):
            if i == 0 and not first_block:
                blk.add(Residual(num_channels, use_1x1conv=True, strides=2))
            else:
                blk.add(Residual(num_channels))
        return blk

    def __init__(self, arch, lr=0.1, num_classes=10):
        super(ResNet, self).__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential()
        self.net.add(self.b1())
        for i, b in enumerate(arch):
            self.net.add(self.block(*b, first_block=(i == 0)))
        self.net.add(nn.GlobalAvgPool2D(), nn.Dense(num_classes))
        self.net.initialize(init.Xavier())


class ResNet18(ResNet):
    """Section 8.6.3: ResNet-18.

    Args:
        lr: the learning rate of the SGD optimizer ``configure_optimizers`` returns.
        num_classes: width of the output layer.
    """

    def __init__(self, lr=0.1, num_classes=10):
        super().__init__(((2, 64), (2, 128), (2, 256), (2, 512)), lr, num_classes)


class ResNeXtBlock(nn.Block):  #@save
    """Section 8.6.5: the ResNeXt block (1x1, grouped 3x3, 1x1 convolutions with batch norm).

    Args:
        num_channels: output channels of the block.
        groups: groups of the 3x3 convolution.
        bot_mul: bottleneck width as a multiple of ``num_channels``.
        use_1x1conv: a 1x1 convolution on the shortcut (when shapes change).
        strides: stride of the 3x3 convolution (and of the shortcut's 1x1).
        **kwargs: passed to ``nn.Block``.
    """

    def __init__(self, num_channels, groups, bot_mul, use_1x1conv=False, strides=1, **kwargs):
        super().__init__(**kwargs)
        bot_channels = int(round(num_channels * bot_mul))
        self.conv1 = nn.Conv2D(bot_channels, kernel_size=1, padding=0, strides=1)
        self.conv2 = nn.Conv2D(bot_channels, kernel_size=3, padding=1,
                               strides=strides, groups=bot_channels//groups)
        self.conv3 = nn.Conv2D(num_channels, kernel_size=1, padding=0, strides=1)
        self.bn1 = nn.BatchNorm()
        self.bn2 = nn.BatchNorm()
        self.bn3 = nn.BatchNorm()
        if use_1x1conv:
            self.conv4 = nn.Conv2D(num_channels, kernel_size=1, strides=strides)
            self.bn4 = nn.BatchNorm()
        else:
            self.conv4 = None

    def forward(self, X):
        Y = npx.relu(self.bn1(self.conv1(X)))
        Y = npx.relu(self.bn2(self.conv2(Y)))
        Y = self.bn3(self.conv3(Y))
        if self.conv4:
            X = self.bn4(self.conv4(X))
        return npx.relu(Y + X)


class DenseNet(Classifier):
    """Section 8.7.4: DenseNet (dense blocks of ``arch`` convolutions, transition layers).

    Args:
        num_channels: channels of the stem's convolution.
        growth_rate: channels each convolution of a dense block adds.
        arch: number of convolutions per dense block.
        lr: the learning rate of the SGD optimizer ``configure_optimizers`` returns.
        num_classes: width of the output layer.
    """

    def b1(self):
        net = nn.Sequential()
        net.add(nn.Conv2D(64, kernel_size=7, strides=2, padding=3),
                nn.BatchNorm(), nn.Activation('relu'),
                nn.MaxPool2D(pool_size=3, strides=2, padding=1))
        return net

    def __init__(self, num_channels=64, growth_rate=32, arch=(4, 4, 4, 4), lr=0.1,
                 num_classes=10):
        super(DenseNet, self).__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential()
        self.net.add(self.b1())
        for i, num_convs in enumerate(arch):
            self.net.add(DenseBlock(num_convs, growth_rate))
            # The number of output channels in the previous dense block
            num_channels += num_convs * growth_rate
            # A transition layer that halves the number of channels is added
            # between the dense blocks
            if i != len(arch) - 1:
                num_channels //= 2
                self.net.add(transition_block(num_channels))
        self.net.add(nn.BatchNorm(), nn.Activation('relu'),
                     nn.GlobalAvgPool2D(), nn.Dense(num_classes))
        self.net.initialize(init.Xavier())


class AnyNet(Classifier):
    """Section 8.8.1: the AnyNet design space (stem, stages of ResNeXt blocks, head), with the
    1.0 MXNet cell's ``stage`` (see the module's docstring).

    Args:
        arch: ``(depth, num_channels, groups, bot_mul)`` per stage.
        stem_channels: channels of the stem's convolution.
        lr: the learning rate of the SGD optimizer ``configure_optimizers`` returns.
        num_classes: width of the output layer.
    """

    def stem(self, num_channels):
        net = nn.Sequential()
        net.add(nn.Conv2D(num_channels, kernel_size=3, padding=1, strides=2),
                nn.BatchNorm(), nn.Activation('relu'))
        return net


@add_to_class(AnyNet)
def stage(self, depth, num_channels, groups, bot_mul):
    net = nn.Sequential()
    for i in range(depth):
        if i == 0:
            net.add(ResNeXtBlock(
                num_channels, groups, bot_mul, use_1x1conv=True, strides=2))
        else:
            # As the 1.0 MXNet cell writes it: one argument too many (see the module docstring).
            net.add(ResNeXtBlock(
                num_channels, num_channels, groups, bot_mul))
    return net


@add_to_class(AnyNet)
def __init__(self, arch, stem_channels, lr=0.1, num_classes=10):
    super(AnyNet, self).__init__()
    self.save_hyperparameters()
    self.net = nn.Sequential()
    self.net.add(self.stem(stem_channels))
    for i, s in enumerate(arch):
        self.net.add(self.stage(*s))
    self.net.add(nn.GlobalAvgPool2D(), nn.Dense(num_classes))
    self.net.initialize(init.Xavier())


class AnyNetIntended(AnyNet):
    """AnyNet with the stage the text describes (and the PyTorch and TensorFlow cells build):
    every block after a stage's first is ``ResNeXtBlock(num_channels, groups, bot_mul)``.

    Args:
        arch: ``(depth, num_channels, groups, bot_mul)`` per stage.
        stem_channels: channels of the stem's convolution.
        lr: the learning rate of the SGD optimizer ``configure_optimizers`` returns.
        num_classes: width of the output layer.
    """

    def stage(self, depth, num_channels, groups, bot_mul):
        net = nn.Sequential()
        for i in range(depth):
            if i == 0:
                net.add(ResNeXtBlock(num_channels, groups, bot_mul, use_1x1conv=True, strides=2))
            else:
                net.add(ResNeXtBlock(num_channels, groups, bot_mul))
        return net


def _regnetx32_arch():
    stem_channels, groups, bot_mul = 32, 16, 1
    depths, channels = (4, 6), (32, 80)
    return (((depths[0], channels[0], groups, bot_mul),
             (depths[1], channels[1], groups, bot_mul)), stem_channels)


class RegNetX32(AnyNet):
    """Section 8.8.2: RegNetX-32 as the 1.0 MXNet cell builds it (6,291,594 trainable
    parameters).

    Args:
        lr: the learning rate of the SGD optimizer ``configure_optimizers`` returns.
        num_classes: width of the output layer.
    """

    def __init__(self, lr=0.1, num_classes=10):
        stem_channels, groups, bot_mul = 32, 16, 1
        depths, channels = (4, 6), (32, 80)
        super().__init__(
            ((depths[0], channels[0], groups, bot_mul),
             (depths[1], channels[1], groups, bot_mul)),
            stem_channels, lr, num_classes)


class RegNetX32Intended(AnyNetIntended):
    """Section 8.8.2: RegNetX-32 as the text describes it (179,290 trainable parameters).

    Args:
        lr: the learning rate of the SGD optimizer ``configure_optimizers`` returns.
        num_classes: width of the output layer.
    """

    def __init__(self, lr=0.1, num_classes=10):
        arch, stem_channels = _regnetx32_arch()
        super().__init__(arch, stem_channels, lr, num_classes)


# name -> (class, constructor arguments, section, input size): the networks the 1.0 chapter
# trains, with the configuration its cells train them in.
EDITION10_MODELS = {
    "d2l10_alexnet": (AlexNet, {}, "8.1", 224),
    "d2l10_vgg11": (VGG, {"arch": ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))}, "8.2", 224),
    "d2l10_vgg11_small": (VGG, {"arch": ((1, 16), (1, 32), (2, 64), (2, 128), (2, 128))},
                          "8.2", 224),
    "d2l10_nin": (NiN, {}, "8.3", 224),
    "d2l10_googlenet": (GoogleNet, {}, "8.4", 96),
    "d2l10_lenet_bn_scratch": (BNLeNetScratch, {}, "8.5", 28),
    "d2l10_lenet_bn": (BNLeNet, {}, "8.5", 28),
    "d2l10_resnet18": (ResNet18, {}, "8.6", 96),
    "d2l10_densenet": (DenseNet, {}, "8.7", 96),
    "d2l10_regnetx32": (RegNetX32, {}, "8.8", 96),
    "d2l10_regnetx32_intended": (RegNetX32Intended, {}, "8.8", 96),
}


def _register(name, cls, kwargs, section, input_size):
    def build(*, num_classes: int = 10, **overrides):
        return cls(**{**kwargs, **overrides}, num_classes=num_classes)
    build.__doc__ = f"{cls.__doc__.splitlines()[0]} (1.0 edition)"
    build.__qualname__ = build.__name__ = name
    # The section's training settings (book.SECTIONS["8.x"]), as 0.17's models use 7.x's.
    register_model(name, family=f"d2l10_{cls.__name__.lower()}", section=section,
                   input_size=input_size, book_settings=section, initializes_itself=True)(build)


for _name, (_cls, _kwargs, _section, _size) in EDITION10_MODELS.items():
    _register(_name, _cls, _kwargs, _section, _size)
