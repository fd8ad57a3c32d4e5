"""Section 7.6, Residual Networks (ResNet), and the older edition's section 5.12 ResNet."""
from __future__ import annotations

from typing import Sequence, Tuple

from mxnet import np, npx
from mxnet.gluon import nn

from ..registry import register_book_model
from .common import sequential

__all__ = ["Residual", "HybridResidual", "resnet_block", "resnet", "resnet18_arch",
           "gluonbook_resnet"]


class Residual(nn.Block):  #@save
    """Section 7.6.2: the residual block (two 3x3 convolutions, optional 1x1 shortcut)."""
    def __init__(self, num_channels, use_1x1conv=False, strides=1, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = nn.Conv2D(num_channels, kernel_size=3, padding=1,
                               strides=strides)
        self.conv2 = nn.Conv2D(num_channels, kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.Conv2D(num_channels, kernel_size=1,
                                   strides=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.BatchNorm()
        self.bn2 = nn.BatchNorm()

    def forward(self, X):
        Y = npx.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        # The printed edition repeats `Y = self.conv3(Y)` here at a page break; the shapes it
        # prints (4, 6, 3, 3) come from transforming the shortcut X, as in the older edition.
        if self.conv3:
            X = self.conv3(X)
        return npx.relu(Y + X)


class HybridResidual(Residual, nn.HybridBlock):
    """The residual block as a HybridBlock: the book's layers (same names), a hybridizable forward."""
    forward = nn.HybridBlock.forward

    def hybrid_forward(self, F, X):
        Y = F.npx.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        return F.npx.relu(Y + X)


def resnet_block(num_channels, num_residuals, first_block=False, *, hybrid: bool = False):
    """Section 7.6.3: ``num_residuals`` residual blocks; all but the first module halve the size."""
    residual = HybridResidual if hybrid else Residual
    blk = sequential(hybrid=hybrid)
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.add(residual(num_channels, use_1x1conv=True, strides=2))
        else:
            blk.add(residual(num_channels))
    return blk


def _stem(net: nn.Sequential) -> None:
    # The first two layers of GoogLeNet, with batch normalization after the convolution.
    net.add(nn.Conv2D(64, kernel_size=7, strides=2, padding=3),
            nn.BatchNorm(), nn.Activation('relu'),
            nn.MaxPool2D(pool_size=3, strides=2, padding=1))


#: Section 7.6.3's ResNet-18: (num_channels, num_residuals) of its four modules.
resnet18_arch = ((64, 2), (128, 2), (256, 2), (512, 2))


@register_book_model("resnet18", family="resnet", section="7.6", input_size=96,
                     book_settings="7.6")
def resnet(arch: Sequence[Tuple[int, int]] = resnet18_arch, *, num_classes: int = 10,
           hybrid: bool = False) -> nn.Sequential:
    """Section 7.6.3: the book's ResNet (ResNet-18 with its default ``arch``)."""
    net = sequential(hybrid=hybrid)
    _stem(net)
    net.add(*[resnet_block(num_channels, num_residuals, first_block=(i == 0), hybrid=hybrid)
              for i, (num_channels, num_residuals) in enumerate(arch)])
    net.add(nn.GlobalAvgPool2D(), nn.Dense(num_classes))
    return net


@register_book_model("gluonbook_resnet", family="resnet", section="5.12", input_size=28,
                     book_settings="5.12")
def gluonbook_resnet(*, num_classes: int = 10, hybrid: bool = False) -> nn.Sequential:
    """Older edition, section 5.12: the stem, then 12 residual blocks (three per stage) in one
    flat sequence, for 28x28 inputs."""
    residual = HybridResidual if hybrid else Residual
    net = sequential(hybrid=hybrid)
    _stem(net)
    for stage, num_channels in enumerate((64, 128, 256, 512)):
        # Since a maximum pooling layer with a stride of 2 has already been used, it is not
        # necessary to reduce the height and width at the first residual block.
        if stage == 0:
            net.add(residual(num_channels))
        else:
            net.add(residual(num_channels, use_1x1conv=True, strides=2))
        net.add(residual(num_channels), residual(num_channels))
    net.add(nn.GlobalAvgPool2D(), nn.Dense(num_classes))
    return net
