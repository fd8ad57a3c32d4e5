"""Section 7.3, Network in Network (NiN)."""
from __future__ import annotations

from mxnet.gluon import nn

from ._registry import register_book_model
from .common import sequential

__all__ = ["nin_block", "nin"]


def nin_block(num_channels: int, kernel_size, strides, padding, *,
              hybrid: bool = False) -> nn.Sequential:
    """Section 7.3.1: a convolution followed by two 1x1 convolutions, all with ReLU.

    Args:
        num_channels: output channels of all three convolutions.
        kernel_size: window of the first convolution.
        strides: stride of the first convolution.
        padding: padding of the first convolution.
        hybrid: build the twin from HybridBlocks (``nn.HybridSequential``), which can be
            hybridized.
    """
    blk = sequential(hybrid=hybrid)
    blk.add(nn.Conv2D(num_channels, kernel_size, strides, padding,
                      activation='relu'),
            nn.Conv2D(num_channels, kernel_size=1, activation='relu'),
            nn.Conv2D(num_channels, kernel_size=1, activation='relu'))
    return blk


@register_book_model("nin", family="nin", section="7.3", input_size=224, book_settings="7.3")
def nin(*, num_classes: int = 10, hybrid: bool = False) -> nn.Sequential:
    """Section 7.3.2: the NiN model, ending in global average pooling instead of dense layers.

    Args:
        num_classes: width of the output layer (10: Fashion-MNIST). The last NiN block has that
            many channels.
        hybrid: build the twin from HybridBlocks (``nn.HybridSequential``), which can be
            hybridized.
    """
    net = sequential(hybrid=hybrid)
    net.add(nin_block(96, kernel_size=11, strides=4, padding=0, hybrid=hybrid),
            nn.MaxPool2D(pool_size=3, strides=2),
            nin_block(256, kernel_size=5, strides=1, padding=2, hybrid=hybrid),
            nn.MaxPool2D(pool_size=3, strides=2),
            nin_block(384, kernel_size=3, strides=1, padding=1, hybrid=hybrid),
            nn.MaxPool2D(pool_size=3, strides=2),
            nn.Dropout(0.5),
            # There are 10 label classes
            nin_block(num_classes, kernel_size=3, strides=1, padding=1, hybrid=hybrid),
            # The global average pooling layer automatically sets the window shape to the height
            # and width of the input
            nn.GlobalAvgPool2D(),
            # Transform the four-dimensional output into two-dimensional output with a shape of
            # (batch size, 10)
            nn.Flatten())
    return net
