"""The chapter's models, one module per family; importing this package registers them all.

Each family module registers the book's models where they are defined and then the papers'
variants (the chapter's exercises) from its spec table, each twice: ``<name>`` in the chapter's
configuration (1 input channel, 10 classes, the input size the book uses for the family) and
``<name>_imagenet`` in ImageNet's (3 channels, 1000 classes, 224x224). All variants are
HybridBlocks.

The registry (:func:`get_model`, :func:`list_models`, :func:`model_info`) and the shape engine
(:func:`infer_shapes`) live here too; nothing in ``models`` imports the package's training, data,
tools or command line.
"""
from __future__ import annotations

from ._registry import (IMAGENET, InputSizeError, ModelInfo, get_model, list_models, model_info,
                        register_book_model, register_model, register_variant)
from ._shapes import ShapeTrace, SymbolicGraph, all_blocks, infer_shapes
from .alexnet import alexnet
from .batchnorm import (BatchNorm, HybridBatchNorm, batch_norm, batch_norm_hybrid, lenet_bn,
                        lenet_bn_scratch, lenet_with_batch_norm)
from .densenet import (DenseBlock, HybridDenseBlock, conv_block, densenet, densenet_bc,
                       densenet_bc_cifar, densenet_bc_cifar_spec, densenet_spec, densenet_variant,
                       transition_block)
from .googlenet import (HybridInception, Inception, InceptionBN, conv_bn_relu, googlenet,
                        inception_spec)
from .nin import nin, nin_block
from .stateful import (ModeAwareHybridBlock, ModeAwareHybridSequential, require_mode_aware,
                       update_state)
from .resnet import (HybridResidual, Residual, ResidualV1, ResidualV2, gluonbook_resnet, resnet,
                     resnet18_arch, resnet_block, resnet_spec, resnet_variant)
from .vgg import conv_arch, small_conv_arch, vgg, vgg_block, vgg_spec, vgg_variant
from .edition10 import (EDITION10_MODELS, AlexNet, AnyNet, AnyNetIntended, BatchNorm10,
                        BNLeNet, BNLeNetScratch, DenseNet, GoogleNet, Inception10, NiN,
                        RegNetX32, RegNetX32Intended, ResNet, ResNet18, ResNeXtBlock, VGG,
                        batch_norm10)
from .zoo_differences import GLUONCV_DIFFERENCES, ZooDifference, gluoncv_options

__all__ = [
    # the registry and the shape engine
    "ModelInfo", "InputSizeError", "IMAGENET", "get_model", "list_models", "model_info",
    "register_model", "register_book_model", "register_variant",
    "ShapeTrace", "SymbolicGraph", "all_blocks", "infer_shapes",
    # the book's blocks and models
    "alexnet", "BatchNorm", "batch_norm", "lenet_bn", "lenet_bn_scratch", "lenet_with_batch_norm",
    "DenseBlock", "HybridDenseBlock", "conv_block", "densenet", "transition_block",
    "HybridInception", "Inception", "googlenet", "inception_spec", "nin", "nin_block",
    "HybridResidual", "Residual", "gluonbook_resnet", "resnet", "resnet18_arch", "resnet_block",
    "conv_arch", "small_conv_arch", "vgg", "vgg_block", "vgg_spec",
    # hybridizable twins of the book's stateful layers
    "batch_norm_hybrid", "HybridBatchNorm", "ModeAwareHybridBlock", "ModeAwareHybridSequential",
    "require_mode_aware", "update_state",
    # the papers' variants (the chapter's exercises)
    "vgg_variant", "resnet_spec", "ResidualV1", "ResidualV2", "resnet_variant", "densenet_spec",
    "densenet_bc_cifar_spec", "densenet_bc", "densenet_variant", "densenet_bc_cifar",
    "InceptionBN", "conv_bn_relu", "ZooDifference", "GLUONCV_DIFFERENCES", "gluoncv_options",
    # the 1.0 edition's chapter 8 (registered as d2l10_*)
    "AlexNet", "VGG", "NiN", "Inception10", "GoogleNet", "batch_norm10", "BatchNorm10",
    "BNLeNetScratch", "BNLeNet", "ResNet", "ResNet18", "ResNeXtBlock", "DenseNet", "AnyNet",
    "RegNetX32", "AnyNetIntended", "RegNetX32Intended", "EDITION10_MODELS",
]
