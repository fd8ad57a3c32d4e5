"""Section 7.6, Residual Networks (ResNet), and the older edition's section 5.12 ResNet.

Below the book's code, its exercises: the ResNets of He et al. (2016a, Table 1; ``resnet_spec``)
with the paper's blocks (``ResidualV1``: basic and bottleneck, projection shortcut with batch
normalization, no convolution biases) and with the pre-activation blocks of He et al. (2016b)
(``ResidualV2``), both built by ``resnet_variant``. The book's simplified ``Residual`` stays as it
is (it keeps convolution biases and its projection has no batch normalization).

gluoncv's model zoo (0.10) differs from the papers in three places, each reproduced by an option
of ``resnet_variant`` (``models.GLUONCV_DIFFERENCES``):

* v1 bottleneck blocks give their two 1x1 convolutions biases (``bottleneck_bias=True``):
  ResNet-50 has 25,575,912 trainable parameters there, 25,557,032 in the paper (as in torchvision);
* v2 normalizes the input image with ``BatchNorm(scale=False, center=False)``
  (``input_batch_norm=True``);
* v2's first block applies batch normalization and ReLU again after the stem's, where the paper
  lets the stem's activation serve as the first block's pre-activation (``first_block_preact``).

Both the paper's released models and gluoncv downsample v1 bottleneck blocks in the first 1x1
convolution (torchvision's "v1.5" does it in the 3x3 one; the parameter count is the same) and
v2 bottleneck blocks in the 3x3 convolution.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

from mxnet import npx
from mxnet.gluon import nn

from ._registry import register_book_model, register_variant
from .common import sequential

__all__ = ["Residual", "HybridResidual", "resnet_block", "resnet", "resnet18_arch",
           "gluonbook_resnet", "resnet_spec", "ResidualV1", "ResidualV2", "resnet_variant"]


class Residual(nn.Block):  #@save
    """Section 7.6.2: the residual block (two 3x3 convolutions, optional 1x1 shortcut).

    Args:
        num_channels: output channels of both convolutions (and of the shortcut's).
        use_1x1conv: transform the shortcut with a 1x1 convolution (needed when the channels or
            the size change).
        strides: stride of the first convolution and of the shortcut's (2 halves the size).
    """
    # FLOPs per output element of the block's own forward, outside its layers (the FLOP counter,
    # flops.block_extra_flops, asks for it): ReLU after bn1, the shortcut addition, the last ReLU.
    extra_flops_per_output = 3

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
    """The residual block as a HybridBlock: the book's layers (same names), a hybridizable forward.

    Args:
        num_channels, use_1x1conv, strides: as :class:`Residual`'s.
    """
    forward = nn.HybridBlock.forward

    def hybrid_forward(self, F, X):
        Y = F.npx.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        return F.npx.relu(Y + X)


def resnet_block(num_channels, num_residuals, first_block=False, *, hybrid: bool = False):
    """Section 7.6.3: ``num_residuals`` residual blocks; all but the first module halve the size.

    Args:
        num_channels: output channels of every residual block.
        num_residuals: number of residual blocks.
        first_block: keep the size and channels in the first block (the first module, after the
            stem's max pooling).
        hybrid: build the twin from HybridBlocks (``nn.HybridSequential``), which can be
            hybridized.
    """
    residual = HybridResidual if hybrid else Residual
    blk = sequential(hybrid=hybrid)
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.add(residual(num_channels, use_1x1conv=True, strides=2))
        else:
            blk.add(residual(num_channels))
    return blk


def _stem(net: nn.Sequential, *, use_bias: bool = True) -> None:
    # The first two layers of GoogLeNet, with batch normalization after the convolution (the
    # papers' ResNets drop the convolution's bias, which the batch norm makes redundant).
    net.add(nn.Conv2D(64, kernel_size=7, strides=2, padding=3, use_bias=use_bias),
            nn.BatchNorm(), nn.Activation('relu'),
            nn.MaxPool2D(pool_size=3, strides=2, padding=1))


#: Section 7.6.3's ResNet-18: (num_channels, num_residuals) of its four modules.
resnet18_arch = ((64, 2), (128, 2), (256, 2), (512, 2))


@register_book_model("resnet18", family="resnet", section="7.6", input_size=96,
                     book_settings="7.6")
def resnet(arch: Sequence[Tuple[int, int]] = resnet18_arch, *, num_classes: int = 10,
           hybrid: bool = False) -> nn.Sequential:
    """Section 7.6.3: the book's ResNet (ResNet-18 with its default ``arch``).

    Args:
        arch: ``(num_channels, num_residuals)`` of each module (ResNet-18 by default).
        num_classes: width of the output layer (10: Fashion-MNIST).
        hybrid: build the twin from HybridBlocks (``nn.HybridSequential``), which can be
            hybridized.
    """
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
    flat sequence, for 28x28 inputs.

    Args:
        num_classes: width of the output layer (10: Fashion-MNIST).
        hybrid: build the twin from HybridBlocks (``nn.HybridSequential``), which can be
            hybridized.
    """
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


# ---------------------------------------------------------------------------------------------
# The papers' ResNets (the exercises of section 7.6): He et al. (2016a) "Deep Residual Learning
# for Image Recognition" (v1) and He et al. (2016b) "Identity Mappings in Deep Residual Networks"
# (v2, pre-activation).

#: Table 1 of He et al. (2016a), keyed by depth: the residual block type, the number of blocks of
#: each of the four stages, and the output channels of the stem and of each stage (a bottleneck
#: block works at a quarter of its output channels).
resnet_spec: Dict[int, Tuple[str, Tuple[int, ...], Tuple[int, ...]]] = {
    18: ('basic', (2, 2, 2, 2), (64, 64, 128, 256, 512)),
    34: ('basic', (3, 4, 6, 3), (64, 64, 128, 256, 512)),
    50: ('bottleneck', (3, 4, 6, 3), (64, 256, 512, 1024, 2048)),
    101: ('bottleneck', (3, 4, 23, 3), (64, 256, 512, 1024, 2048)),
    152: ('bottleneck', (3, 8, 36, 3), (64, 256, 512, 1024, 2048)),
}


def _residual_convs(num_channels: int, strides: int, *, bottleneck: bool, stride_on_1x1: bool,
                    bias_1x1: bool = False) -> List[nn.Conv2D]:
    """The weight layers of a residual branch: two 3x3 convolutions (basic block) or
    1x1 (reduce to a quarter) - 3x3 - 1x1 (restore) convolutions (bottleneck block)."""
    if not bottleneck:
        return [nn.Conv2D(num_channels, kernel_size=3, padding=1, strides=strides, use_bias=False),
                nn.Conv2D(num_channels, kernel_size=3, padding=1, use_bias=False)]
    width = num_channels // 4
    return [nn.Conv2D(width, kernel_size=1, strides=strides if stride_on_1x1 else 1,
                      use_bias=bias_1x1),
            nn.Conv2D(width, kernel_size=3, padding=1, strides=1 if stride_on_1x1 else strides,
                      use_bias=False),
            nn.Conv2D(num_channels, kernel_size=1, use_bias=bias_1x1)]


class ResidualV1(nn.HybridBlock):
    """He et al. (2016a), Fig. 5: the residual block of the paper's ResNets.

    Each convolution is followed by batch normalization, each but the last by ReLU; the ReLU after
    the addition ends the block. The shortcut is the identity or, with ``use_1x1conv``, a
    projection (1x1 convolution with batch normalization, option B of the paper). The arguments
    are the book's ``Residual``'s; ``bottleneck=True`` builds the 1x1-3x3-1x1 block of ResNet-50
    and deeper, downsampling in its first 1x1 convolution as the paper's released models do.
    Convolutions have no biases (``bottleneck_bias=True`` gives the 1x1 convolutions of the
    bottleneck branch biases, as gluoncv does).

    Args:
        num_channels: output channels of the block.
        use_1x1conv: a projection shortcut instead of the identity.
        strides: stride of the block's downsampling convolution and of the projection.
        bottleneck: the 1x1-3x3-1x1 block (width ``num_channels // 4``) instead of two 3x3.
        bottleneck_bias: biases in the bottleneck's 1x1 convolutions (gluoncv's v1).
    """
    extra_flops_per_output = 2  # the shortcut addition and the last ReLU

    def __init__(self, num_channels: int, use_1x1conv: bool = False, strides: int = 1, *,
                 bottleneck: bool = False, bottleneck_bias: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.body = nn.HybridSequential()
        for i, conv in enumerate(_residual_convs(num_channels, strides, bottleneck=bottleneck,
                                                 stride_on_1x1=True, bias_1x1=bottleneck_bias)):
            if i:
                self.body.add(nn.Activation('relu'))
            self.body.add(conv, nn.BatchNorm())
        if use_1x1conv:
            self.shortcut = nn.HybridSequential()
            self.shortcut.add(nn.Conv2D(num_channels, kernel_size=1, strides=strides,
                                        use_bias=False), nn.BatchNorm())
        else:
            self.shortcut = None

    def hybrid_forward(self, F, X):
        Y = self.body(X)
        if self.shortcut:
            X = self.shortcut(X)
        return F.npx.relu(Y + X)


class ResidualV2(nn.HybridBlock):
    """He et al. (2016b), Fig. 4(e): the pre-activation residual block.

    Batch normalization and ReLU come before each convolution and nothing follows the addition.
    The projection shortcut (``use_1x1conv``, a 1x1 convolution) takes the pre-activated input;
    the identity shortcut the input itself. ``preact=False`` leaves out the first batch
    normalization and ReLU, for the first block after the stem, whose activation the stem already
    applies (the paper's appendix). A bottleneck block downsamples in its 3x3 convolution.

    Args:
        num_channels: output channels of the block.
        use_1x1conv: a projection shortcut instead of the identity.
        strides: stride of the block's downsampling convolution and of the projection.
        bottleneck: the 1x1-3x3-1x1 block (width ``num_channels // 4``) instead of two 3x3.
        preact: start with batch normalization and ReLU (``False`` for the first block).
    """
    extra_flops_per_output = 1  # the shortcut addition

    def __init__(self, num_channels: int, use_1x1conv: bool = False, strides: int = 1, *,
                 bottleneck: bool = False, preact: bool = True, **kwargs):
        super().__init__(**kwargs)
        if preact:
            self.preact = nn.HybridSequential()
            self.preact.add(nn.BatchNorm(), nn.Activation('relu'))
        else:
            self.preact = None
        self.body = nn.HybridSequential()
        for i, conv in enumerate(_residual_convs(num_channels, strides, bottleneck=bottleneck,
                                                 stride_on_1x1=False)):
            if i:
                self.body.add(nn.BatchNorm(), nn.Activation('relu'))
            self.body.add(conv)
        self.shortcut = nn.Conv2D(num_channels, kernel_size=1, strides=strides,
                                  use_bias=False) if use_1x1conv else None

    def hybrid_forward(self, F, X):
        Y = self.preact(X) if self.preact else X
        shortcut = self.shortcut(Y) if self.shortcut else X
        return self.body(Y) + shortcut


def resnet_variant(depth: int, *, version: int = 1, num_classes: int = 10,
                   bottleneck_bias: bool = False, input_batch_norm: bool = False,
                   first_block_preact: bool = False) -> nn.HybridSequential:
    """The ResNet of He et al. (2016a, Table 1) with ``depth`` layers: v1 blocks (``version=1``)
    or the pre-activation blocks of He et al. (2016b) (``version=2``, which adds a batch
    normalization and ReLU before the pooling).

    The network is the book's ResNet structure (section 7.6.3): the stem, four stages of residual
    blocks, global average pooling and a dense layer. The remaining options reproduce gluoncv's
    model zoo, which differs from the papers (see the module docstring): ``bottleneck_bias``
    (v1), ``input_batch_norm`` and ``first_block_preact`` (v2).

    Args:
        depth: 18, 34, 50, 101 or 152 (a key of :data:`resnet_spec`).
        version: 1 (He et al. 2016a) or 2 (pre-activation, He et al. 2016b).
        num_classes: width of the output layer (10: Fashion-MNIST).
        bottleneck_bias: biases in the v1 bottleneck's 1x1 convolutions (gluoncv).
        input_batch_norm: v2 only, normalize the input image first (gluoncv).
        first_block_preact: v2 only, pre-activate the first block too (gluoncv).
    """
    if depth not in resnet_spec:
        raise ValueError(f"unknown ResNet depth {depth!r}; valid depths: "
                         f"{', '.join(map(str, resnet_spec))}")
    if version not in (1, 2):
        raise ValueError(f"unknown ResNet version {version!r}; valid versions: 1 (He et al. "
                         f"2016a), 2 (pre-activation, He et al. 2016b)")
    if bottleneck_bias and version != 1:
        raise ValueError("bottleneck_bias applies to version 1 (gluoncv's v1 bottleneck); "
                         "version 2 has no convolution biases")
    if first_block_preact and version != 2:
        raise ValueError("first_block_preact applies to version 2 (pre-activation blocks)")
    block_type, num_blocks, channels = resnet_spec[depth]
    bottleneck = block_type == 'bottleneck'
    net = nn.HybridSequential()
    if input_batch_norm:
        net.add(nn.BatchNorm(scale=False, center=False))
    _stem(net, use_bias=False)
    in_channels = channels[0]
    for stage, (count, num_channels) in enumerate(zip(num_blocks, channels[1:])):
        blk = nn.HybridSequential()
        for i in range(count):
            strides = 2 if i == 0 and stage > 0 else 1
            use_1x1conv = i == 0 and (strides != 1 or in_channels != num_channels)
            if version == 1:
                blk.add(ResidualV1(num_channels, use_1x1conv, strides, bottleneck=bottleneck,
                                   bottleneck_bias=bottleneck_bias))
            else:
                preact = first_block_preact or not (stage == 0 and i == 0)
                blk.add(ResidualV2(num_channels, use_1x1conv, strides, bottleneck=bottleneck,
                                   preact=preact))
        net.add(blk)
        in_channels = num_channels
    if version == 2:
        net.add(nn.BatchNorm(), nn.Activation('relu'))
    net.add(nn.GlobalAvgPool2D(), nn.Dense(num_classes))
    return net


for _depth, (_block, _, _) in resnet_spec.items():
    for _version, _paper in ((1, "He et al. 2016a, Table 1"), (2, "He et al. 2016b")):
        register_variant(
            f"resnet{_depth}_v{_version}", resnet_variant, family="resnet", section=_paper,
            input_size=96, book_settings="7.6",
            description=f"ResNet-{_depth} with {_block} "
                        f"{'residual' if _version == 1 else 'pre-activation'} blocks ({_paper})",
            kwargs={"depth": _depth, "version": _version})
