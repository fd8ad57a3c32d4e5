"""Section 7.4, Networks with Parallel Concatenations (GoogLeNet).

Exercise 1 of the section, GoogLeNet with batch normalization, is ``googlenet(batch_norm=True,
hybrid=True)``: every convolution of the book's network is followed by batch normalization and
then ReLU (``conv_bn_relu``), in ``InceptionBN``, the book's Inception block with its paths built
that way. The convolutions keep the book's biases, as VGG's ``_bn`` variants do. gluoncv's
``googlenet`` is not this network (3x3 instead of 5x5 convolutions in the third path, no
convolution biases, ceil-mode pooling, dropout before the output layer), so none is compared.
"""
from __future__ import annotations

from mxnet import np
from mxnet.gluon import nn

from ._registry import register_book_model, register_variant
from .common import sequential

__all__ = ["Inception", "HybridInception", "googlenet", "inception_spec", "conv_bn_relu",
           "InceptionBN"]


class Inception(nn.Block):
    """Section 7.4.1: the Inception block, four parallel paths concatenated on the channels.

    Args:
        c1: output channels of path 1 (1x1 convolution).
        c2: ``(c2_1, c2_2)``, output channels of path 2 (1x1, then 3x3 convolution).
        c3: ``(c3_1, c3_2)``, output channels of path 3 (1x1, then 5x5 convolution).
        c4: output channels of path 4 (3x3 max pooling, then 1x1 convolution).
    """
    # c1 - c4 are the number of output channels for each layer in the path
    def __init__(self, c1, c2, c3, c4, **kwargs):
        super(Inception, self).__init__(**kwargs)
        # Path 1 is a single 1 x 1 convolutional layer
        self.p1_1 = nn.Conv2D(c1, kernel_size=1, activation='relu')
        # Path 2 is a 1 x 1 convolutional layer followed by a 3 x 3
        # convolutional layer
        self.p2_1 = nn.Conv2D(c2[0], kernel_size=1, activation='relu')
        self.p2_2 = nn.Conv2D(c2[1], kernel_size=3, padding=1,
                              activation='relu')
        # Path 3 is a 1 x 1 convolutional layer followed by a 5 x 5
        # convolutional layer
        self.p3_1 = nn.Conv2D(c3[0], kernel_size=1, activation='relu')
        self.p3_2 = nn.Conv2D(c3[1], kernel_size=5, padding=2,
                              activation='relu')
        # Path 4 is a 3 x 3 maximum pooling layer followed by a 1 x 1
        # convolutional layer
        self.p4_1 = nn.MaxPool2D(pool_size=3, strides=1, padding=1)
        self.p4_2 = nn.Conv2D(c4, kernel_size=1, activation='relu')

    def forward(self, x):
        p1 = self.p1_1(x)
        p2 = self.p2_2(self.p2_1(x))
        p3 = self.p3_2(self.p3_1(x))
        p4 = self.p4_2(self.p4_1(x))
        # Concatenate the outputs on the channel dimension
        return np.concatenate((p1, p2, p3, p4), axis=1)


class HybridInception(Inception, nn.HybridBlock):
    """The Inception block as a HybridBlock: the book's layers (same names), a hybridizable forward.

    Args:
        c1, c2, c3, c4: as :class:`Inception`'s.
    """
    forward = nn.HybridBlock.forward

    def hybrid_forward(self, F, x):
        p1 = self.p1_1(x)
        p2 = self.p2_2(self.p2_1(x))
        p3 = self.p3_2(self.p3_1(x))
        p4 = self.p4_2(self.p4_1(x))
        return F.np.concatenate((p1, p2, p3, p4), axis=1)


def conv_bn_relu(channels: int, **kwargs) -> nn.HybridSequential:
    """A convolution without activation (``kwargs`` go to ``nn.Conv2D``), batch normalization,
    then ReLU: the convolution of GoogLeNet with batch normalization (exercise 1 of section 7.4).

    Args:
        channels: output channels of the convolution.
        **kwargs: the rest of ``nn.Conv2D``'s arguments (``kernel_size``, ...).
    """
    blk = nn.HybridSequential()
    blk.add(nn.Conv2D(channels, **kwargs), nn.BatchNorm(), nn.Activation('relu'))
    return blk


def _conv_relu(channels: int, **kwargs) -> nn.Conv2D:
    # The book's convolution: ReLU fused into the layer.
    return nn.Conv2D(channels, activation='relu', **kwargs)


class InceptionBN(nn.HybridBlock):
    """Exercise 1 of section 7.4: the book's Inception block (its four paths, their names and
    its forward) with a batch normalization after each convolution, each built by
    :func:`conv_bn_relu`.

    A HybridBlock of its own rather than a subclass of :class:`Inception`, whose ``__init__``
    builds ReLU convolutions; the forward is :class:`HybridInception`'s.

    Args:
        c1: output channels of path 1 (1x1 convolution).
        c2: ``(c2_1, c2_2)``, output channels of path 2 (1x1, then 3x3 convolution).
        c3: ``(c3_1, c3_2)``, output channels of path 3 (1x1, then 5x5 convolution).
        c4: output channels of path 4 (3x3 max pooling, then 1x1 convolution).
    """

    def __init__(self, c1, c2, c3, c4, **kwargs):
        super().__init__(**kwargs)
        self.p1_1 = conv_bn_relu(c1, kernel_size=1)
        self.p2_1 = conv_bn_relu(c2[0], kernel_size=1)
        self.p2_2 = conv_bn_relu(c2[1], kernel_size=3, padding=1)
        self.p3_1 = conv_bn_relu(c3[0], kernel_size=1)
        self.p3_2 = conv_bn_relu(c3[1], kernel_size=5, padding=2)
        self.p4_1 = nn.MaxPool2D(pool_size=3, strides=1, padding=1)
        self.p4_2 = conv_bn_relu(c4, kernel_size=1)

    hybrid_forward = HybridInception.hybrid_forward


#: Section 7.4.2: the (c1, c2, c3, c4) of the Inception blocks of modules b3, b4 and b5.
inception_spec = (
    ((64, (96, 128), (16, 32), 32),
     (128, (128, 192), (32, 96), 64)),
    ((192, (96, 208), (16, 48), 64),
     (160, (112, 224), (24, 64), 64),
     (128, (128, 256), (24, 64), 64),
     (112, (144, 288), (32, 64), 64),
     (256, (160, 320), (32, 128), 128)),
    ((256, (160, 320), (32, 128), 128),
     (384, (192, 384), (48, 128), 128)),
)


@register_book_model("googlenet", family="googlenet", section="7.4", input_size=96,
                     book_settings="7.4")
def googlenet(*, num_classes: int = 10, hybrid: bool = False,
              batch_norm: bool = False) -> nn.Sequential:
    """Section 7.4.2: GoogLeNet, modules b1 to b5 then a dense output layer.

    ``batch_norm=True`` (with ``hybrid=True``) builds GoogLeNet-BN, exercise 1 of section 7.4:
    every convolution followed by batch normalization before its ReLU.

    Args:
        num_classes: width of the output layer (10: Fashion-MNIST).
        hybrid: build the twin from HybridBlocks (``nn.HybridSequential``), which can be
            hybridized.
        batch_norm: GoogLeNet-BN (needs ``hybrid=True``).
    """
    if batch_norm and not hybrid:
        raise ValueError("GoogLeNet with batch normalization is built from HybridBlocks only; "
                         "pass hybrid=True")
    inception = InceptionBN if batch_norm else HybridInception if hybrid else Inception
    conv = conv_bn_relu if batch_norm else _conv_relu
    b3_spec, b4_spec, b5_spec = inception_spec
    # The modules are created in the book's order (b1 ... b5, then net), which fixes the layer
    # names its shape trace prints (sequential0 ... sequential4, dense0).
    b1 = sequential(hybrid=hybrid)
    b1.add(conv(64, kernel_size=7, strides=2, padding=3),
           nn.MaxPool2D(pool_size=3, strides=2, padding=1))
    b2 = sequential(hybrid=hybrid)
    b2.add(conv(64, kernel_size=1),
           conv(192, kernel_size=3, padding=1),
           nn.MaxPool2D(pool_size=3, strides=2, padding=1))
    b3 = sequential(hybrid=hybrid)
    b3.add(*[inception(*spec) for spec in b3_spec],
           nn.MaxPool2D(pool_size=3, strides=2, padding=1))
    b4 = sequential(hybrid=hybrid)
    b4.add(*[inception(*spec) for spec in b4_spec],
           nn.MaxPool2D(pool_size=3, strides=2, padding=1))
    b5 = sequential(hybrid=hybrid)
    b5.add(*[inception(*spec) for spec in b5_spec],
           nn.GlobalAvgPool2D())
    net = sequential(hybrid=hybrid)
    net.add(b1, b2, b3, b4, b5, nn.Dense(num_classes))
    return net


register_variant("googlenet_bn", googlenet, family="googlenet", section="7.4, exercise 1",
                 input_size=96, book_settings="7.4",
                 description="GoogLeNet with batch normalization after each convolution",
                 kwargs={"hybrid": True, "batch_norm": True})
