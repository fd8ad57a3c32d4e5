"""gluon-modern-cnn: the "Modern Convolutional Neural Networks" chapter of Dive into Deep Learning
(MXNet/Gluon edition), runnable today.

Importing the package makes MXNet 1.9.1 importable on numpy 1.23 to 1.26 and activates
``npx.set_np()`` semantics for the importing thread, as the book's notebooks do. Run legacy ``nd``
code (for example gluoncv's model zoo) inside ``with gluon_modern_cnn.legacy_mode(): ...``.

The book's helper names are importable from here, so ``import gluon_modern_cnn as d2l`` can stand in
for ``from d2l import mxnet as d2l`` in the chapter's cells, in the 0.17 edition (``train_ch6``,
``load_data_fashion_mnist``) and in the 1.0 edition (``Classifier``, ``Trainer``, ``FashionMNIST``,
``add_to_class``, the models of chapter 8 and the small aliases such as ``randn``).
"""
from .runtime.compat import (activate_np, explain_array_mode_errors, import_mxnet, legacy_mode,
                      np_thread, restore_numpy_aliases)

import_mxnet()
activate_np()
explain_array_mode_errors()

__version__ = "0.1.0"

# The chapter's blocks and models (sections 7.1 to 7.7, and the older edition's 5.12 ResNet).
from .models import (BatchNorm, DenseBlock, HybridBatchNorm, HybridDenseBlock,  # noqa: E402
                     HybridInception, HybridResidual, Inception, ModeAwareHybridBlock,
                     ModeAwareHybridSequential, Residual, alexnet, batch_norm, batch_norm_hybrid,
                     conv_arch,
                     conv_block, densenet, gluonbook_resnet, googlenet, lenet_bn,
                     lenet_bn_scratch, lenet_with_batch_norm, nin, nin_block, resnet,
                     resnet_block, small_conv_arch, transition_block, vgg, vgg_block)
# The model registry (models/_registry.py; `gluon_modern_cnn.registry` re-exports it too).
from .models import (InputSizeError, ModelInfo, get_model, list_models,  # noqa: E402
                     model_info, register_book_model, register_model)

# The d2l helpers the chapter's cells call (devices, data, training, plotting).
from .training.checkpoint import load_parameters, save_parameters  # noqa: E402
from .data import (get_dataloader_workers, get_fashion_mnist_labels,  # noqa: E402
                   load_data_fashion_mnist)
from .runtime.devices import num_gpus, try_all_gpus, try_gpu  # noqa: E402
from .training.plotting import Animator  # noqa: E402
from .training import (Accumulator, History, Timer, accuracy,  # noqa: E402
                       evaluate_accuracy_gpu, split_batch, train_ch5, train_ch5_with_history,
                       train_ch6, train_ch6_with_history, train_ch13,
                       train_ch13_with_history)

# The 1.0 edition's API (chapter 8 of D2L 1.0) and its networks.
from .edition10 import (ALIASES as _ALIASES, Classifier, DataModule, FashionMNIST,  # noqa: E402
                        HyperParameters, Module, ProgressBoard, Trainer, add_to_class, cpu, gpu)
from .models import (AlexNet, AnyNet, AnyNetIntended, BNLeNet, BNLeNetScratch,  # noqa: E402
                     DenseNet, GoogleNet, NiN, RegNetX32, RegNetX32Intended, ResNet, ResNet18,
                     ResNeXtBlock, VGG)

globals().update(_ALIASES)   # d2l.randn, d2l.reshape, ... as the 1.0 library names them
