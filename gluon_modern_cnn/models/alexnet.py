"""Section 7.1, Deep Convolutional Neural Networks (AlexNet)."""
from __future__ import annotations

from mxnet.gluon import nn

from ._registry import register_book_model
from .common import sequential

__all__ = ["alexnet"]


@register_book_model("alexnet", family="alexnet", section="7.1", input_size=224,
                     book_settings="7.1")
def alexnet(*, num_classes: int = 10, hybrid: bool = False) -> nn.Sequential:
    """AlexNet as streamlined in section 7.1 (one GPU, Fashion-MNIST upsampled to 224x224).

    Args:
        num_classes: width of the output layer (10: Fashion-MNIST).
        hybrid: build the twin from HybridBlocks (``nn.HybridSequential``), which can be
            hybridized.
    """
    net = sequential(hybrid=hybrid)
    # Here, we use a larger 11 x 11 window to capture objects. At the same time, we use a stride of
    # 4 to greatly reduce the height and width of the output. Here, the number of output channels
    # is much larger than that in LeNet
    net.add(nn.Conv2D(96, kernel_size=11, strides=4, activation='relu'),
            nn.MaxPool2D(pool_size=3, strides=2),
            # Make the convolution window smaller, set padding to 2 for consistent height and width
            # across the input and output, and increase the number of output channels
            nn.Conv2D(256, kernel_size=5, padding=2, activation='relu'),
            nn.MaxPool2D(pool_size=3, strides=2),
            # Use three successive convolutional layers and a smaller convolution window. Except
            # for the final convolutional layer, the number of output channels is further
            # increased. Pooling layers are not used to reduce the height and width of input after
            # the first two convolutional layers
            nn.Conv2D(384, kernel_size=3, padding=1, activation='relu'),
            nn.Conv2D(384, kernel_size=3, padding=1, activation='relu'),
            nn.Conv2D(256, kernel_size=3, padding=1, activation='relu'),
            nn.MaxPool2D(pool_size=3, strides=2),
            # Here, the number of outputs of the fully connected layer is several times larger than
            # that in LeNet. Use the dropout layer to mitigate overfitting
            nn.Dense(4096, activation='relu'), nn.Dropout(0.5),
            nn.Dense(4096, activation='relu'), nn.Dropout(0.5),
            # Output layer. Since we are using Fashion-MNIST, the number of classes is 10, instead
            # of 1000 as in the paper
            nn.Dense(num_classes))
    return net
