"""Section 7.7, Densely Connected Networks (DenseNet).

Below the book's code, its exercises: the DenseNet-BC of Huang et al. (2017) built by
``densenet_bc`` from the book's blocks (``conv_block`` with a bottleneck layer, BN-ReLU-1x1
convolution to 4k channels before the BN-ReLU-3x3 convolution to k; ``transition_block`` keeping
``floor(0.5 * channels)``; no convolution biases): the ImageNet DenseNet-121/169/201/264 of Table 1
(``densenet_spec``, ``densenet_variant``: 7x7 stem convolution with 2k channels, batch norm, ReLU
and 3x3 max pooling; batch norm, ReLU, global average pooling and a dense layer at the end) and the
CIFAR DenseNet-BC of Table 2 (``densenet_bc_cifar_spec``, ``densenet_bc_cifar``: three dense
blocks after a single 3x3 convolution).

gluoncv's model zoo (0.10) has the same DenseNet-121/169/201 except the final pooling: a fixed
7x7 average pooling (``final_pool_size=7``) instead of global pooling, which is the same only when
the last feature maps are 7x7 (inputs of 221 to 252 pixels).
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

from mxnet import np
from mxnet.gluon import nn

from ._registry import register_book_model, register_model, register_variant
from .common import check_positive_int, sequential

__all__ = ["conv_block", "DenseBlock", "HybridDenseBlock", "transition_block", "densenet",
           "densenet_spec", "densenet_bc_cifar_spec", "densenet_bc", "densenet_variant",
           "densenet_bc_cifar"]


def conv_block(num_channels, *, hybrid: bool = False, bottleneck_channels: Optional[int] = None,
               use_bias: bool = True):
    """Section 7.7.2: the "batch normalization, activation, convolution" block of DenseNet.

    ``bottleneck_channels`` puts a bottleneck layer (batch normalization, ReLU, 1x1 convolution to
    that many channels) before it, the layer of DenseNet-B; the papers' convolutions have no
    biases (``use_bias=False``).

    Args:
        num_channels: output channels of the 3x3 convolution (the growth rate).
        hybrid: build the twin from HybridBlocks (``nn.HybridSequential``), which can be
            hybridized.
        bottleneck_channels: output channels of a 1x1 bottleneck layer before it; ``None`` for
            none.
        use_bias: biases in the convolutions.
    """
    blk = sequential(hybrid=hybrid)
    if bottleneck_channels is not None:
        blk.add(nn.BatchNorm(), nn.Activation('relu'),
                nn.Conv2D(bottleneck_channels, kernel_size=1, use_bias=use_bias))
    blk.add(nn.BatchNorm(),
            nn.Activation('relu'),
            nn.Conv2D(num_channels, kernel_size=3, padding=1, use_bias=use_bias))
    return blk


class DenseBlock(nn.Block):
    """Section 7.7.2: ``num_convs`` conv blocks, each input concatenated with its output.

    Args:
        num_convs: number of conv blocks.
        num_channels: output channels of each conv block (the growth rate).
    """
    def __init__(self, num_convs, num_channels, **kwargs):
        super().__init__(**kwargs)
        self.net = nn.Sequential()
        for _ in range(num_convs):
            self.net.add(conv_block(num_channels))

    def forward(self, X):
        for blk in self.net:
            Y = blk(X)
            # Concatenate the input and output of each block on the channel
            # dimension
            X = np.concatenate((X, Y), axis=1)
        return X


class HybridDenseBlock(nn.HybridBlock):
    """The dense block as a HybridBlock, with the book's structure (``net`` of conv blocks) and
    forward (each block's input concatenated with its output).

    A HybridBlock of its own rather than a subclass of :class:`DenseBlock` (as ``HybridResidual``
    and ``HybridInception`` are of theirs): the book's ``__init__`` puts an ``nn.Sequential`` in
    ``net``, which Gluon refuses as the child of a HybridBlock, and builds no bottleneck layers.

    Args:
        num_convs: number of conv blocks.
        num_channels: output channels of each conv block (the growth rate).
        bottleneck_channels: channels of a bottleneck layer before each conv block (DenseNet-B),
            ``None`` for none; goes to every :func:`conv_block`.
        use_bias: biases in the convolutions (the papers' have none).
    """
    def __init__(self, num_convs, num_channels, *, bottleneck_channels: Optional[int] = None,
                 use_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.net = nn.HybridSequential()
        for _ in range(num_convs):
            self.net.add(conv_block(num_channels, hybrid=True,
                                    bottleneck_channels=bottleneck_channels, use_bias=use_bias))

    def hybrid_forward(self, F, X):
        for blk in self.net:
            X = F.np.concatenate((X, blk(X)), axis=1)
        return X


def transition_block(num_channels, *, hybrid: bool = False, use_bias: bool = True):
    """Section 7.7.3: a 1x1 convolution to ``num_channels`` and 2x2 average pooling (stride 2).

    Args:
        num_channels: output channels of the 1x1 convolution.
        hybrid: build the twin from HybridBlocks (``nn.HybridSequential``), which can be
            hybridized.
        use_bias: a bias in the convolution.
    """
    blk = sequential(hybrid=hybrid)
    blk.add(nn.BatchNorm(), nn.Activation('relu'),
            nn.Conv2D(num_channels, kernel_size=1, use_bias=use_bias),
            nn.AvgPool2D(pool_size=2, strides=2))
    return blk


@register_book_model("densenet", family="densenet", section="7.7", input_size=96,
                     book_settings="7.7")
def densenet(*, num_classes: int = 10, hybrid: bool = False, num_channels: int = 64,
             growth_rate: int = 32,
             num_convs_in_dense_blocks: Sequence[int] = (4, 4, 4, 4)) -> nn.Sequential:
    """Section 7.7.4: the book's DenseNet (four dense blocks of four conv blocks, growth rate 32).

    Args:
        num_classes: width of the output layer (10: Fashion-MNIST).
        hybrid: build the twin from HybridBlocks (``nn.HybridSequential``), which can be
            hybridized.
        num_channels: channels of the first convolution.
        growth_rate: output channels of every conv block.
        num_convs_in_dense_blocks: conv blocks in each dense block.
    """
    dense_block = HybridDenseBlock if hybrid else DenseBlock
    net = sequential(hybrid=hybrid)
    net.add(nn.Conv2D(num_channels, kernel_size=7, strides=2, padding=3),
            nn.BatchNorm(), nn.Activation('relu'),
            nn.MaxPool2D(pool_size=3, strides=2, padding=1))
    # num_channels: the current number of channels
    for i, num_convs in enumerate(num_convs_in_dense_blocks):
        net.add(dense_block(num_convs, growth_rate))
        # This is the number of output channels in the previous dense block
        num_channels += num_convs * growth_rate
        # A transition layer that halves the number of channels is added between
        # the dense blocks
        if i != len(num_convs_in_dense_blocks) - 1:
            num_channels //= 2
            net.add(transition_block(num_channels, hybrid=hybrid))
    net.add(nn.BatchNorm(),
            nn.Activation('relu'),
            nn.GlobalAvgPool2D(),
            nn.Dense(num_classes))
    return net


# ---------------------------------------------------------------------------------------------
# The paper's DenseNets (the exercises of section 7.7): Huang et al. (2017) "Densely Connected
# Convolutional Networks".

#: Table 1 of Huang et al. (2017), the ImageNet DenseNet-BC, keyed by depth: channels of the stem
#: convolution (2k), growth rate k, and the number of bottleneck layers in each of the four dense
#: blocks.
densenet_spec: Dict[int, Tuple[int, int, Tuple[int, ...]]] = {
    121: (64, 32, (6, 12, 24, 16)),
    169: (64, 32, (6, 12, 32, 32)),
    201: (64, 32, (6, 12, 48, 32)),
    264: (64, 32, (6, 12, 64, 48)),
}

#: The CIFAR DenseNet-BC of the paper's results table (Table 2), keyed by (depth, growth rate k),
#: in the format of :data:`densenet_spec`: three dense blocks of (depth - 4) / 6 bottleneck layers
#: (each two convolutions; the stem, two transitions and the classifier make up the other 4), and a
#: stem of 2k channels.
densenet_bc_cifar_spec: Dict[Tuple[int, int], Tuple[int, int, Tuple[int, ...]]] = {
    (100, 12): (24, 12, (16, 16, 16)),
    (250, 24): (48, 24, (41, 41, 41)),
    (190, 40): (80, 40, (31, 31, 31)),
}

_STEMS = ('imagenet', 'cifar')


def densenet_bc(num_convs_in_dense_blocks: Sequence[int], *, growth_rate: int,
                num_channels: int, stem: str = 'imagenet', bottleneck_width: Optional[int] = 4,
                compression: float = 0.5, num_classes: int = 10,
                final_pool_size: Optional[int] = None) -> nn.HybridSequential:
    """DenseNet-BC of Huang et al. (2017), from the book's blocks (section 7.7).

    The stem is a 7x7 convolution to ``num_channels`` (stride 2), batch normalization, ReLU and
    3x3 max pooling (stride 2) (``stem='imagenet'``), or a single 3x3 convolution
    (``stem='cifar'``). Dense blocks of bottleneck layers (``bottleneck_width * growth_rate``
    channels in the 1x1 convolution; ``None`` for none) alternate with transition layers that keep
    ``floor(compression * channels)`` channels; batch normalization, ReLU, global average pooling
    and a dense layer end the network. ``bottleneck_width=None`` gives DenseNet-C,
    ``compression=1`` DenseNet-B, both the plain DenseNet. ``final_pool_size`` replaces the global
    pooling by a fixed average pooling window, as gluoncv's model zoo has (7).

    Args:
        num_convs_in_dense_blocks: bottleneck layers in each dense block.
        growth_rate: k, the channels each layer adds.
        num_channels: channels of the stem convolution.
        stem: ``'imagenet'`` or ``'cifar'``.
        bottleneck_width: bottleneck channels in units of ``growth_rate``; ``None`` for no
            bottleneck.
        compression: the fraction of channels a transition layer keeps (theta).
        num_classes: width of the output layer (10: Fashion-MNIST).
        final_pool_size: a fixed average pooling window instead of global pooling.
    """
    if stem not in _STEMS:
        raise ValueError(f"unknown DenseNet stem {stem!r}; valid stems: {', '.join(_STEMS)}")
    check_positive_int(growth_rate, "growth_rate")
    check_positive_int(num_channels, "num_channels")
    if bottleneck_width is not None:
        check_positive_int(bottleneck_width, "bottleneck_width")
    if not num_convs_in_dense_blocks:
        raise ValueError("num_convs_in_dense_blocks must list the layers of at least one dense "
                         "block, e.g. (6, 12, 24, 16)")
    for i, num_convs in enumerate(num_convs_in_dense_blocks):
        check_positive_int(num_convs, f"num_convs_in_dense_blocks[{i}]")
    if not 0 < compression <= 1:
        raise ValueError(f"compression must be in (0, 1] (the paper's theta); got {compression!r}")
    bottleneck_channels = None if bottleneck_width is None else bottleneck_width * growth_rate
    net = nn.HybridSequential()
    if stem == 'imagenet':
        net.add(nn.Conv2D(num_channels, kernel_size=7, strides=2, padding=3, use_bias=False),
                nn.BatchNorm(), nn.Activation('relu'),
                nn.MaxPool2D(pool_size=3, strides=2, padding=1))
    else:
        net.add(nn.Conv2D(num_channels, kernel_size=3, padding=1, use_bias=False))
    for i, num_convs in enumerate(num_convs_in_dense_blocks):
        net.add(HybridDenseBlock(num_convs, growth_rate, bottleneck_channels=bottleneck_channels,
                                 use_bias=False))
        num_channels += num_convs * growth_rate
        if i != len(num_convs_in_dense_blocks) - 1:
            num_channels = int(num_channels * compression)
            net.add(transition_block(num_channels, hybrid=True, use_bias=False))
    net.add(nn.BatchNorm(), nn.Activation('relu'),
            nn.GlobalAvgPool2D() if final_pool_size is None
            else nn.AvgPool2D(pool_size=final_pool_size),
            nn.Dense(num_classes))
    return net


def densenet_variant(depth: int, *, num_classes: int = 10,
                     final_pool_size: Optional[int] = None) -> nn.HybridSequential:
    """DenseNet-121, -169, -201 or -264: the ImageNet DenseNet-BC of Table 1 of Huang et al.
    (2017), growth rate 32, compression 0.5.

    Args:
        depth: 121, 169, 201 or 264 (a key of :data:`densenet_spec`).
        num_classes: width of the output layer (10: Fashion-MNIST).
        final_pool_size: a fixed average pooling window instead of global pooling (gluoncv: 7).
    """
    if depth not in densenet_spec:
        raise ValueError(f"unknown DenseNet depth {depth!r}; valid depths: "
                         f"{', '.join(map(str, densenet_spec))}")
    num_channels, growth_rate, blocks = densenet_spec[depth]
    return densenet_bc(blocks, growth_rate=growth_rate, num_channels=num_channels,
                       num_classes=num_classes, final_pool_size=final_pool_size)


def densenet_bc_cifar(depth: int = 100, growth_rate: int = 12, *,
                      num_classes: int = 10) -> nn.HybridSequential:
    """The CIFAR DenseNet-BC of Table 2 of Huang et al. (2017): three dense blocks, for 32x32
    images (k=12, depth 100 by default: 0.8M parameters).

    Args:
        depth: the network's depth (100, 250 or 190).
        growth_rate: k (12, 24 or 40; with ``depth`` a key of :data:`densenet_bc_cifar_spec`).
        num_classes: width of the output layer (10: Fashion-MNIST).
    """
    key = (depth, growth_rate)
    if key not in densenet_bc_cifar_spec:
        valid = ', '.join(f"depth {d} with growth rate {k}" for d, k in densenet_bc_cifar_spec)
        raise ValueError(f"unknown CIFAR DenseNet-BC configuration: depth {depth!r} with growth "
                         f"rate {growth_rate!r}; valid configurations: {valid}")
    num_channels, growth_rate, blocks = densenet_bc_cifar_spec[key]
    return densenet_bc(blocks, growth_rate=growth_rate, num_channels=num_channels, stem='cifar',
                       num_classes=num_classes)


for _depth, (_, _growth_rate, _) in densenet_spec.items():
    register_variant(
        f"densenet{_depth}", densenet_variant, family="densenet",
        section="Huang et al. 2017, Table 1", input_size=96, book_settings="7.7",
        description=f"DenseNet-{_depth} (DenseNet-BC, growth rate {_growth_rate}, Table 1 of "
                    f"Huang et al.)",
        kwargs={"depth": _depth})

# The CIFAR DenseNet-BC is registered in its own configuration, the paper's: 3x32x32 images, 10
# classes (its convolutions infer their input channels, so it takes 1-channel images too).
register_model("densenet_bc_100_k12", family="densenet", section="Huang et al. 2017, Table 2",
               input_size=32, in_channels=3, num_classes=10, hybrid=True,
               description="DenseNet-BC for CIFAR, depth 100, growth rate 12 (0.8M parameters, "
                           "Table 2 of Huang et al.)",
               kwargs={"depth": 100, "growth_rate": 12})(densenet_bc_cifar)
