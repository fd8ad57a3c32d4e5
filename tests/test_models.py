"""Every registered model builds, trains (every parameter gets a gradient) and loads its twin's
parameters; the registry refuses bad names."""
import mxnet as mx
import numpy as onp
import pytest
from mxnet import autograd, init, np
from mxnet.gluon import nn

import gluon_modern_cnn as gmc
from gluon_modern_cnn import registry
from gluon_modern_cnn.models import BatchNorm, HybridBatchNorm, vgg, vgg_block

BOOK_MODELS = ["alexnet", "vgg11", "vgg11_small", "nin", "googlenet", "lenet_bn_scratch",
               "lenet_bn", "resnet18", "densenet", "gluonbook_resnet"]
HYBRID_TWINS = [f"{name}_hybrid" for name in BOOK_MODELS]
# The papers' variants (the chapter's exercises) in the chapter's configuration, each also in
# ImageNet's (`_imagenet`; the book's vgg11 is VGG-11's chapter configuration), and the CIFAR
# DenseNet-BC.
RESNET_VARIANTS = [f"resnet{d}_v{v}" for d in (18, 34, 50, 101, 152) for v in (1, 2)]
VARIANTS = (["vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]
            + RESNET_VARIANTS + ["densenet121", "densenet169", "densenet201", "densenet264",
                                 "googlenet_bn"])
IMAGENET_VARIANTS = [f"{name}_imagenet" for name in ["vgg11"] + VARIANTS]
# The 1.0 edition's chapter 8 networks (gluon_modern_cnn.models.edition10).
EDITION10_MODELS = [f"d2l10_{name}" for name in (
    "alexnet", "vgg11", "vgg11_small", "nin", "googlenet", "lenet_bn_scratch", "lenet_bn",
    "resnet18", "densenet", "regnetx32", "regnetx32_intended")]
EXPECTED_MODELS = sorted(BOOK_MODELS + HYBRID_TWINS + VARIANTS + IMAGENET_VARIANTS
                         + ["densenet_bc_100_k12"] + EDITION10_MODELS)


def test_registry_holds_exactly_the_expected_models():
    assert gmc.list_models() == EXPECTED_MODELS


def test_list_models_filters_by_pattern():
    assert gmc.list_models("resnet*") == sorted(
        ["resnet18", "resnet18_hybrid"] + RESNET_VARIANTS
        + [f"{name}_imagenet" for name in RESNET_VARIANTS])


def _train_step(net, shape):
    net.initialize(init.Xavier())
    X = np.random.uniform(size=shape)
    y = np.array(onp.arange(shape[0]) % 10)
    loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    with autograd.record():
        l = loss(net(X), y)
    l.backward()
    return l


def _biases_before_batch_norm(net):
    """Biases of layers a batch norm directly follows, in sequential containers (elsewhere, such
    as in a residual block, the order of the children is not the order of the computation)."""
    batch_norms = (nn.BatchNorm, BatchNorm, HybridBatchNorm)
    names = set()
    for block in _all_blocks(net):
        if not isinstance(block, (nn.Sequential, nn.HybridSequential)):
            continue
        children = list(block._children.values())
        for layer, following in zip(children, children[1:]):
            if isinstance(following, batch_norms) and getattr(layer, "bias", None) is not None:
                names.add(layer.bias.name)
    return names


def _all_blocks(block):
    yield block
    for child in block._children.values():
        yield from _all_blocks(child)


@pytest.mark.parametrize("name", EXPECTED_MODELS)
def test_forward_backward_reaches_every_parameter(name):
    info = gmc.model_info(name)
    net = gmc.get_model(name)
    if info.hybrid:
        net.hybridize(static_alloc=True, static_shape=True)
    # Batch norm over a single value (a dense layer's output, or a 1x1 feature map, as in the
    # last stages at small inputs) returns beta and passes no gradient back: use two examples.
    batch = 2
    # Models run at the input size the book (or the CIFAR paper) uses; the ImageNet configurations,
    # which no cell of the book runs, at a small size that keeps them affordable here (their
    # 224x224 shapes are checked symbolically by the models page test).
    size = (max(info.min_input_size, 32) if name.endswith("_imagenet") else info.input_size)
    l = _train_step(net, (batch, info.in_channels, size, size))
    assert l.shape == (batch,) and bool(np.isfinite(l).all())
    trainable = {k: p for k, p in net.collect_params().items() if p.grad_req != "null"}
    assert trainable
    # MXNet pre-allocates zero gradients: only a non-zero norm shows the gradient arrived. The
    # exception proves the rule: a bias right before a batch norm is subtracted again with the
    # batch mean, so its gradient is zero in exact arithmetic (rounding may leave a trace).
    cancelled = _biases_before_batch_norm(net)
    norms = {k: float(np.linalg.norm(p.grad())) for k, p in trainable.items()}
    dead = [k for k, norm in norms.items() if k not in cancelled and norm == 0.0]
    assert not dead, f"parameters without gradient: {dead}"
    largest = max(norms.values())
    assert all(norms[k] <= 1e-4 * largest for k in cancelled), \
        {k: norms[k] for k in cancelled}


@pytest.mark.parametrize("name", BOOK_MODELS)
def test_twins_share_parameter_files(name, tmp_path):
    info = gmc.model_info(name)
    book_net, twin = gmc.get_model(name), gmc.get_model(info.twin)
    book_net.initialize(init.Xavier())
    size = max(info.min_input_size, 8)  # small inputs keep VGG's dense layers (and files) small
    X = np.random.uniform(size=(2, info.in_channels, size, size))
    with autograd.train_mode():
        book_net(X)  # moves the scratch BatchNorm's statistics away from their zeros
    expected = book_net(X)  # prediction mode
    # The package's files also carry state the book keeps outside Parameters (the scratch
    # BatchNorm's moving statistics); for the other pairs they equal Gluon's save_parameters.
    path = tmp_path / f"{name}.params"
    gmc.save_parameters(book_net, path)
    twin.initialize()
    gmc.load_parameters(twin, path)
    twin.hybridize()
    onp.testing.assert_allclose(twin(X).asnumpy(), expected.asnumpy(), rtol=1e-5, atol=1e-6)


def test_book_and_twin_record_each_other():
    assert gmc.model_info("resnet18").twin == "resnet18_hybrid"
    assert gmc.model_info("resnet18_hybrid").twin == "resnet18"
    assert gmc.model_info("resnet18_hybrid").hybrid
    assert not isinstance(gmc.get_model("resnet18")[4][0], nn.HybridBlock)  # the book's nn.Block


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(ValueError) as err:
        gmc.get_model("resnet81")
    message = str(err.value)
    assert "unknown model 'resnet81'" in message and "Did you mean resnet18" in message
    assert all(name in message for name in EXPECTED_MODELS)


def test_duplicate_registration_is_refused():
    with pytest.raises(ValueError, match="'alexnet' is already registered"):
        registry.register_model("alexnet", family="x", section="x", input_size=1)(lambda: None)


def test_constructors_take_num_classes():
    net = gmc.get_model("resnet18_hybrid", num_classes=3)
    net.initialize()
    assert net(np.zeros((2, 1, 96, 96))).shape == (2, 3)


@pytest.mark.parametrize("name,size,minimum", [("alexnet", 28, 67), ("nin_hybrid", 66, 67),
                                               ("vgg11_small", 31, 32)])
def test_too_small_input_names_the_minimum_size(name, size, minimum):
    net = gmc.get_model(name)
    net.initialize()
    with pytest.raises(registry.InputSizeError,
                       match=f"needs input images of at least {minimum}x{minimum} pixels; "
                             f"got {size}x{size}"):
        net(np.zeros((1, 1, size, size)))
    assert net(np.zeros((1, 1, minimum, minimum))).shape == (1, 10)


def test_googlenet_runs_on_a_single_pixel():
    # Exercise 2 of section 7.4: padding keeps every window inside the image down to 1x1.
    assert gmc.model_info("googlenet").min_input_size == 1
    net = gmc.get_model("googlenet")
    net.initialize()
    assert net(np.zeros((1, 1, 1, 1))).shape == (1, 10)


@pytest.mark.parametrize("conv_arch,problem", [
    ((), "non-empty sequence"), ("abc", "non-empty sequence"), (((1, 64), (2,)), r"conv_arch\[1\]"),
    (((0, 64),), "num_convs must be a positive integer"),
    (((1, 64.5),), "num_channels must be a positive integer")])
def test_malformed_conv_arch_is_rejected(conv_arch, problem):
    with pytest.raises(ValueError, match=problem):
        vgg(conv_arch)


def test_vgg_block_halves_the_resolution():
    blk = vgg_block(2, 8)
    blk.initialize()
    assert blk(np.zeros((1, 3, 16, 16))).shape == (1, 8, 8, 8)


@pytest.mark.parametrize("num_dims", [3, 1, "4"])
def test_batchnorm_rejects_other_num_dims(num_dims):
    with pytest.raises(ValueError, match="num_dims must be 2 .* or 4"):
        BatchNorm(6, num_dims=num_dims)
