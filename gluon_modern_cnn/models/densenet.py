"""Section 7.7, Densely Connected Networks (DenseNet)."""
from __future__ import annotations

from typing import Sequence

from mxnet import np
from mxnet.gluon import nn

from ..registry import register_book_model
from .common import sequential

__all__ = ["conv_block", "DenseBlock", "HybridDenseBlock", "transition_block", "densenet"]


def conv_block(num_channels, *, hybrid: bool = False):
    """Section 7.7.2: the "batch normalization, activation, convolution" block of DenseNet."""
    blk = sequential(hybrid=hybrid)
    blk.add(nn.BatchNorm(),
            nn.Activation('relu'),
            nn.Conv2D(num_channels, kernel_size=3, padding=1))
    return blk


class DenseBlock(nn.Block):
    """Section 7.7.2: ``num_convs`` conv blocks, each input concatenated with its output."""
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
    """The dense block as a HybridBlock, with the book's structure (``net`` of conv blocks)."""
    def __init__(self, num_convs, num_channels, **kwargs):
        super().__init__(**kwargs)
        self.net = nn.HybridSequential()
        for _ in range(num_convs):
            self.net.add(conv_block(num_channels, hybrid=True))

    def hybrid_forward(self, F, X):
        for blk in self.net:
            X = F.np.concatenate((X, blk(X)), axis=1)
        return X


def transition_block(num_channels, *, hybrid: bool = False):
    """Section 7.7.3: a 1x1 convolution to ``num_channels`` and 2x2 average pooling (stride 2)."""
    blk = sequential(hybrid=hybrid)
    blk.add(nn.BatchNorm(), nn.Activation('relu'),
            nn.Conv2D(num_channels, kernel_size=1),
            nn.AvgPool2D(pool_size=2, strides=2))
    return blk


@register_book_model("densenet", family="densenet", section="7.7", input_size=96,
                     book_settings="7.7")
def densenet(*, num_classes: int = 10, hybrid: bool = False, num_channels: int = 64,
             growth_rate: int = 32,
             num_convs_in_dense_blocks: Sequence[int] = (4, 4, 4, 4)) -> nn.Sequential:
    """Section 7.7.4: the book's DenseNet (four dense blocks of four conv blocks, growth rate 32)."""
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
