"""Section 7.2, Networks Using Blocks (VGG).

The book's ``vgg`` builds every configuration of Table 1 of Simonyan and Zisserman (``vgg_spec``;
``vgg_variant`` by depth), with batch normalization after each convolution for the ``_bn``
variants, which keep the convolutions' biases as torchvision and gluoncv do. gluoncv's model zoo
(0.10) builds the same networks: no option is needed to reproduce it.
"""
from __future__ import annotations

from typing import Sequence, Tuple

from mxnet.gluon import nn

from ._registry import register_book_model, register_variant
from .common import check_conv_arch, check_positive_int, sequential

__all__ = ["vgg_block", "vgg", "conv_arch", "small_conv_arch", "vgg_spec", "vgg_variant"]

#: VGG-11 (configuration A of Simonyan and Zisserman, Table 1): (num_convs, num_channels) per block.
conv_arch = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))

#: The configurations of Table 1 of Simonyan and Zisserman (2014), keyed by depth (A, B, D, E).
vgg_spec = {
    11: conv_arch,
    13: ((2, 64), (2, 128), (2, 256), (2, 512), (2, 512)),
    16: ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)),
    19: ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512)),
}


def small_conv_arch(ratio: int = 4, arch: Sequence[Tuple[int, int]] = conv_arch):
    """Section 7.2.3: ``arch`` with the number of channels divided by ``ratio`` (4 in the book).

    Args:
        ratio: divides every block's number of channels.
        arch: the ``(num_convs, num_channels)`` pairs to shrink.
    """
    check_positive_int(ratio, "ratio")
    return [(pair[0], pair[1] // ratio) for pair in check_conv_arch(arch)]


def vgg_block(num_convs: int, num_channels: int, *, hybrid: bool = False,
              batch_norm: bool = False) -> nn.Sequential:
    """Section 7.2.1: ``num_convs`` 3x3 convolutions with ReLU, then 2x2 max pooling (stride 2).

    ``batch_norm=True`` puts a batch normalization between each convolution and its ReLU (the
    ``vgg*_bn`` variants).

    Args:
        num_convs: number of 3x3 convolutions.
        num_channels: their output channels.
        hybrid: build the twin from HybridBlocks (``nn.HybridSequential``), which can be
            hybridized.
        batch_norm: batch normalization between each convolution and its ReLU.
    """
    blk = sequential(hybrid=hybrid)
    for _ in range(num_convs):
        if batch_norm:
            blk.add(nn.Conv2D(num_channels, kernel_size=3, padding=1), nn.BatchNorm(),
                    nn.Activation('relu'))
        else:
            blk.add(nn.Conv2D(num_channels, kernel_size=3,
                              padding=1, activation='relu'))
    blk.add(nn.MaxPool2D(pool_size=2, strides=2))
    return blk


@register_book_model("vgg11", family="vgg", section="7.2", input_size=224, book_settings="7.2")
@register_book_model("vgg11_small", family="vgg", section="7.2", input_size=224,
                     book_settings="7.2", kwargs={"conv_arch": small_conv_arch(4)},
                     description="VGG-11 with a quarter of the channels, trained in section 7.2.3")
def vgg(conv_arch: Sequence[Tuple[int, int]] = conv_arch, *, num_classes: int = 10,
        hybrid: bool = False, batch_norm: bool = False) -> nn.Sequential:
    """Section 7.2.2: a VGG network from ``conv_arch``, then the fully-connected part of AlexNet.

    Args:
        conv_arch: ``(num_convs, num_channels)`` of each VGG block (VGG-11 by default).
        num_classes: width of the output layer (10: Fashion-MNIST).
        hybrid: build the twin from HybridBlocks (``nn.HybridSequential``), which can be
            hybridized.
        batch_norm: batch normalization after each convolution (``_bn``).
    """
    conv_arch = check_conv_arch(conv_arch)
    net = sequential(hybrid=hybrid)
    # The convolutional layer part
    for (num_convs, num_channels) in conv_arch:
        net.add(vgg_block(num_convs, num_channels, hybrid=hybrid, batch_norm=batch_norm))
    # The fully connected layer part
    net.add(nn.Dense(4096, activation='relu'), nn.Dropout(0.5),
            nn.Dense(4096, activation='relu'), nn.Dropout(0.5),
            nn.Dense(num_classes))
    return net


def vgg_variant(depth: int, *, batch_norm: bool = False,
                num_classes: int = 10) -> nn.HybridSequential:
    """VGG-11, -13, -16 or -19 (configurations A, B, D, E of Table 1 of Simonyan and Zisserman)
    built by the book's :func:`vgg` from HybridBlocks; ``batch_norm=True`` adds batch
    normalization after each convolution (``vgg16_bn``, ...).

    Args:
        depth: 11, 13, 16 or 19 (a key of :data:`vgg_spec`).
        batch_norm: batch normalization after each convolution.
        num_classes: width of the output layer (10: Fashion-MNIST).
    """
    if depth not in vgg_spec:
        raise ValueError(f"unknown VGG depth {depth!r}; valid depths: "
                         f"{', '.join(map(str, vgg_spec))}")
    return vgg(vgg_spec[depth], num_classes=num_classes, hybrid=True, batch_norm=batch_norm)


_VGG_CONFIGURATIONS = {11: "A", 13: "B", 16: "D", 19: "E"}

for _depth in vgg_spec:
    for _bn in (False, True):
        register_variant(
            f"vgg{_depth}{'_bn' if _bn else ''}", vgg_variant, family="vgg",
            section="7.2" if (_depth, _bn) == (11, False)
            else "Simonyan & Zisserman 2015, Table 1" + (", with batch norm" if _bn else ""),
            input_size=224, book_settings="7.2",
            description=f"VGG-{_depth} (configuration {_VGG_CONFIGURATIONS[_depth]} of Table 1 of "
                        f"Simonyan and Zisserman)"
                        + (" with batch normalization after each convolution" if _bn else ""),
            kwargs={"depth": _depth, "batch_norm": _bn},
            # The book's vgg11 already is VGG-11 in the chapter's configuration.
            chapter=(_depth, _bn) != (11, False))
