"""The chapter's models, one module per family; importing this package registers them all."""
from .alexnet import alexnet
from .batchnorm import BatchNorm, batch_norm, lenet_bn, lenet_bn_scratch, lenet_with_batch_norm
from .densenet import DenseBlock, HybridDenseBlock, conv_block, densenet, transition_block
from .googlenet import HybridInception, Inception, googlenet, inception_spec
from .nin import nin, nin_block
from .resnet import HybridResidual, Residual, gluonbook_resnet, resnet, resnet18_arch, resnet_block
from .vgg import conv_arch, small_conv_arch, vgg, vgg_block, vgg_spec
