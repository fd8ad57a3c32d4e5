"""The papers' variants (the chapter's exercises): the published parameter counts, gluoncv's
networks reproduced exactly through the builders' options, the output shape of every stage where
no reference exists, the minimum input sizes, and clear errors for bad configurations.

Parameter counts are taken without allocating anything (symbolic shape inference at 224x224,
where VGG's first dense layer has its ImageNet size) and counted two ways: trainable values
(``grad_req != 'null'``) and the rest (batch-norm running statistics and fixed scale/shift).
"""
import mxnet as mx
import numpy as onp
import pytest
from gluoncv import model_zoo
from mxnet import np
from mxnet.gluon import nn

import gluon_modern_cnn as gmc
from gluon_modern_cnn.tools import flops
from gluon_modern_cnn import registry
from gluon_modern_cnn.tools.flops import infer_shapes
from gluon_modern_cnn.tools.model_docs import summarize_model
from gluon_modern_cnn.models import (GLUONCV_DIFFERENCES, densenet_bc, densenet_bc_cifar,
                                     densenet_bc_cifar_spec, densenet_variant, gluoncv_options,
                                     googlenet, resnet_variant, vgg_variant)

IMAGENET_SHAPE = (1, 3, 224, 224)

#: torchvision's parameter counts for the papers' ImageNet architectures (trainable values).
PUBLISHED = {
    "vgg11_imagenet": 132_863_336, "vgg13_imagenet": 133_047_848,
    "vgg16_imagenet": 138_357_544, "vgg19_imagenet": 143_667_240,
    "resnet18_v1_imagenet": 11_689_512, "resnet34_v1_imagenet": 21_797_672,
    "resnet50_v1_imagenet": 25_557_032, "resnet101_v1_imagenet": 44_549_160,
    "resnet152_v1_imagenet": 60_192_808,
    "densenet121_imagenet": 7_978_856, "densenet169_imagenet": 14_149_480,
    "densenet201_imagenet": 20_013_928,
}

#: Our variants that are meant to be gluoncv's networks, and the gluoncv names; each is compared at
#: the smallest size gluoncv's network runs on cheaply (DenseNet's fixed 7x7 pooling needs 224).
GLUONCV_TWINS = (
    [(f"vgg{d}{bn}_imagenet", f"vgg{d}{bn}", 32) for d in (11, 13, 16, 19) for bn in ("", "_bn")]
    + [(f"resnet{d}_v{v}_imagenet", f"resnet{d}_v{v}", 32)
       for d in (18, 34, 50, 101, 152) for v in (1, 2)]
    + [(f"densenet{d}_imagenet", f"densenet{d}", 224) for d in (121, 169, 201)])

CHAPTER_VARIANTS = (["vgg13", "vgg16", "vgg19"] + [f"vgg{d}_bn" for d in (11, 13, 16, 19)]
                    + [f"resnet{d}_v{v}" for d in (18, 34, 50, 101, 152) for v in (1, 2)]
                    + [f"densenet{d}" for d in (121, 169, 201, 264)] + ["googlenet_bn"])
VARIANTS = (CHAPTER_VARIANTS + [f"{n}_imagenet" for n in ["vgg11"] + CHAPTER_VARIANTS]
            + ["densenet_bc_100_k12"])


def _counts(net, input_shape=None):
    """(trainable values, other values) of ``net``; with ``input_shape``, its parameter shapes
    are inferred first (symbolically, nothing is allocated)."""
    if input_shape is not None:
        infer_shapes(net, input_shape)
    trainable = flops.count_parameters(net)
    return trainable, flops.count_parameters(net, trainable_only=False) - trainable


def test_the_variants_are_hybrid_and_registered_in_both_configurations():
    assert set(VARIANTS) <= set(gmc.list_models()) and len(VARIANTS) == 46
    for name in VARIANTS:
        info = gmc.model_info(name)
        assert info.hybrid and info.twin is None, name
        assert isinstance(gmc.get_model(name), nn.HybridBlock)
        if name.endswith("_imagenet"):
            assert (info.in_channels, info.num_classes, info.input_size) == (3, 1000, 224)
        elif name != "densenet_bc_100_k12":
            assert (info.in_channels, info.num_classes) == (1, 10)
            assert info.input_size == (224 if name.startswith("vgg") else 96)
            assert gmc.model_info(f"{name}_imagenet").constructor.func is info.constructor.func
    info = gmc.model_info("densenet_bc_100_k12")  # CIFAR's configuration, the paper's
    assert (info.in_channels, info.num_classes, info.input_size) == (3, 10, 32)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_is_the_published_one(name):
    trainable, _ = _counts(gmc.get_model(name), IMAGENET_SHAPE)
    assert trainable == PUBLISHED[name]


def test_the_cifar_densenet_bc_has_the_papers_parameter_counts():
    # Table 2 of Huang et al.: DenseNet-BC k=12 depth 100: 0.8M, k=24 depth 250: 15.3M,
    # k=40 depth 190: 25.6M (CIFAR-10, 10 classes, 3 input channels).
    published = {(100, 12): 0.8, (250, 24): 15.3, (190, 40): 25.6}
    for (depth, k), millions in published.items():
        trainable, _ = _counts(densenet_bc_cifar(depth, k), (1, 3, 32, 32))
        assert round(trainable / 1e6, 1) == millions, (depth, k, trainable)
        if (depth, k) == (100, 12):
            assert trainable == 769_162  # rounds to 0.8M
    assert set(densenet_bc_cifar_spec) == set(published)
    net = gmc.get_model("densenet_bc_100_k12")
    assert _counts(net, (1, 3, 32, 32))[0] == 769_162


@pytest.mark.parametrize("ours,theirs,size", GLUONCV_TWINS)
def test_gluoncv_network_is_reproduced_exactly(ours, theirs, size):
    rng = onp.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(2, 3, size, size)).astype("float32")
    with gmc.legacy_mode():  # gluoncv's model zoo uses the legacy operators
        zoo_net = model_zoo.get_model(theirs)
        infer_shapes(zoo_net, X.shape)
        zoo_params = list(zoo_net.collect_params().values())
        # Seeded random values for all parameters, batch-norm statistics included.
        zoo_net.collect_params().load_dict(
            {p.name: mx.nd.from_numpy(_random_value(p, rng), zero_copy=False) for p in zoo_params})
        expected = zoo_net(mx.nd.from_numpy(X, zero_copy=False)).asnumpy()  # prediction mode
        values = [p.data().as_np_ndarray() for p in zoo_params]
        zoo_counts = _counts(zoo_net)

    net = gmc.get_model(ours, check_input_size=False, **gluoncv_options(ours))
    infer_shapes(net, X.shape)
    params = list(net.collect_params().values())
    # Mapped by structural position: both lists in creation order, each parameter used once.
    assert len(params) == len(values)
    assert [p.shape for p in params] == [v.shape for v in values]
    assert [_kind(p) for p in params] == [_kind(p) for p in zoo_params]
    assert [p.grad_req for p in params] == [p.grad_req for p in zoo_params]
    assert _counts(net) == zoo_counts
    net.collect_params().load_dict({p.name: value for p, value in zip(params, values)})
    net.hybridize()
    out = net(np.array(X)).asnumpy()
    assert out.shape == expected.shape == (2, 1000)
    scale = onp.abs(expected).max()
    assert scale > 0.01 and onp.abs(out - expected).max() <= 1e-5 * scale

    if size != 224:  # VGG's first dense layer depends on the input size: count at ImageNet's too
        with gmc.legacy_mode():
            zoo_counts = _counts(model_zoo.get_model(theirs), IMAGENET_SHAPE)
        assert _counts(gmc.get_model(ours, **gluoncv_options(ours)), IMAGENET_SHAPE) == zoo_counts


def _kind(p):
    """The role of a parameter: weight, bias, gamma, beta, mean or var (running statistics)."""
    return p.name.rsplit("_", 1)[-1]


def _random_value(p, rng):
    """A random value for parameter ``p``: weights with variance 2/fan-in, batch-norm scales and
    variances around 1, shifts, means and biases around 0 (a fixed scale stays 1, a fixed shift
    0)."""
    if len(p.shape) >= 2:
        bound = (6 / int(onp.prod(p.shape[1:]))) ** 0.5
        return rng.uniform(-bound, bound, size=p.shape).astype("float32")
    if p.grad_req == "null" and _kind(p) in ("gamma", "beta"):
        return onp.full(p.shape, 1.0 if _kind(p) == "gamma" else 0.0, dtype="float32")
    if _kind(p) in ("gamma", "var"):
        return rng.uniform(0.5, 1.5, size=p.shape).astype("float32")
    return rng.normal(0, 0.2, size=p.shape).astype("float32")


def test_gluoncv_options_name_each_difference():
    assert gluoncv_options("resnet50_v1_imagenet") == {"bottleneck_bias": True}
    assert gluoncv_options("resnet18_v2") == {"input_batch_norm": True, "first_block_preact": True}
    assert gluoncv_options("densenet121") == {"final_pool_size": 7}
    assert gluoncv_options("vgg16_bn_imagenet") == {}
    assert gluoncv_options("densenet") == {} and gluoncv_options("resnet18") == {}
    with pytest.raises(ValueError, match="unknown model 'resnet50'"):
        gluoncv_options("resnet50")
    # Each documented difference changes the network: without it our count is the paper's.
    assert {d.option for d in GLUONCV_DIFFERENCES} == {
        "bottleneck_bias", "input_batch_norm", "first_block_preact", "final_pool_size"}


@pytest.mark.parametrize("depth,extra", [(50, 18_880), (101, 40_640), (152, 59_840)])
def test_gluoncv_bottleneck_biases_are_on_the_1x1_convolutions(depth, extra):
    paper, _ = _counts(resnet_variant(depth, num_classes=1000), IMAGENET_SHAPE)
    net = resnet_variant(depth, num_classes=1000, bottleneck_bias=True)
    gluoncv, _ = _counts(net, IMAGENET_SHAPE)
    assert gluoncv - paper == extra
    block = net[4][0]  # the first bottleneck block
    assert [c.bias is not None for c in block.body if isinstance(c, nn.Conv2D)] == \
        [True, False, True]
    assert block.shortcut[0].bias is None


def test_gluoncv_v2_differences_cost_what_the_docs_say():
    paper = _counts(resnet_variant(18, num_classes=1000, version=2), IMAGENET_SHAPE)
    input_bn = _counts(resnet_variant(18, num_classes=1000, version=2, input_batch_norm=True),
                       IMAGENET_SHAPE)
    preact = _counts(resnet_variant(18, num_classes=1000, version=2, first_block_preact=True),
                     IMAGENET_SHAPE)
    assert (input_bn[0] - paper[0], input_bn[1] - paper[1]) == (0, 4 * 3)
    assert (preact[0] - paper[0], preact[1] - paper[1]) == (128, 128)


def test_densenet_fixed_pooling_matches_global_pooling_only_for_7x7_maps():
    for size in (221, 224, 252):  # the sizes whose last feature maps are 7x7
        net = densenet_variant(121, final_pool_size=7)
        trace = infer_shapes(net, (1, 3, size, size))
        assert trace.input_shape(net[-4]) == (1, 1024, 7, 7) and trace.output_shape(net) == (1, 10)
    with pytest.raises(ValueError, match="does not fit"):
        infer_shapes(densenet_variant(121, final_pool_size=7), (1, 3, 220, 220))
    net = densenet_variant(121, final_pool_size=7)
    assert infer_shapes(net, (1, 3, 256, 256)).input_shape(net[-2]) == (1, 1024, 8, 8)
    net = densenet_variant(121)  # the paper's global pooling takes any size
    assert infer_shapes(net, (1, 3, 220, 220)).output_shape(net) == (1, 10)


def _stage_shapes(name):
    return [shape[1:] for _, shape in summarize_model(name).stages]


def test_densenet264_stages():
    # Table 1 of Huang et al.: 6, 12, 64, 48 layers of growth 32; transitions halve the channels.
    assert _stage_shapes("densenet264_imagenet") == [
        (64, 112, 112), (64, 112, 112), (64, 112, 112), (64, 56, 56),
        (256, 56, 56), (128, 28, 28), (512, 28, 28), (256, 14, 14), (2304, 14, 14),
        (1152, 7, 7), (2688, 7, 7), (2688, 7, 7), (2688, 7, 7), (2688, 1, 1), (1000,)]
    assert _stage_shapes("densenet264")[-6:] == [
        (1152, 3, 3), (2688, 3, 3), (2688, 3, 3), (2688, 3, 3), (2688, 1, 1), (10,)]


def test_densenet_bc_100_k12_stages():
    # Three dense blocks of 16 bottleneck layers (k=12) from a 24-channel stem.
    assert _stage_shapes("densenet_bc_100_k12") == [
        (24, 32, 32), (216, 32, 32), (108, 16, 16), (300, 16, 16), (150, 8, 8), (342, 8, 8),
        (342, 8, 8), (342, 8, 8), (342, 1, 1), (10,)]


@pytest.mark.parametrize("name,shapes", [
    ("googlenet_bn", [(64, 24, 24), (192, 12, 12), (480, 6, 6), (832, 3, 3), (1024, 1, 1),
                      (10,)]),
    ("googlenet_bn_imagenet", [(64, 56, 56), (192, 28, 28), (480, 14, 14), (832, 7, 7),
                               (1024, 1, 1), (1000,)]),
    # The book's simplified ResNets (section 7.6.3 at its input size; the older edition's 5.12).
    ("resnet18", [(64, 48, 48), (64, 48, 48), (64, 48, 48), (64, 24, 24), (64, 24, 24),
                  (128, 12, 12), (256, 6, 6), (512, 3, 3), (512, 1, 1), (10,)]),
    ("gluonbook_resnet", [(64, 14, 14), (64, 14, 14), (64, 14, 14), (64, 7, 7)]
     + [(64, 7, 7)] * 3 + [(128, 4, 4)] * 3 + [(256, 2, 2)] * 3 + [(512, 1, 1)] * 3
     + [(512, 1, 1), (10,)]),
])
def test_stage_shapes(name, shapes):
    assert _stage_shapes(name) == shapes


def test_googlenet_bn_puts_batch_norm_after_every_convolution():
    net = gmc.get_model("googlenet_bn")
    convs = [b for b in _all_blocks(net) if isinstance(b, nn.Conv2D)]
    assert len(convs) == 3 + 9 * 6 and all(c.act is None for c in convs)
    for seq in (b for b in _all_blocks(net) if isinstance(b, nn.HybridSequential)):
        layers = list(seq._children.values())
        for i, layer in enumerate(layers):
            if isinstance(layer, nn.Conv2D):
                assert isinstance(layers[i + 1], nn.BatchNorm)
                assert layers[i + 2].__class__ is nn.Activation
    # The book's GoogLeNet is unchanged: no batch norm, ReLU fused into the convolutions.
    book = googlenet(hybrid=True)
    assert not any(isinstance(b, nn.BatchNorm) for b in _all_blocks(book))


def _all_blocks(block):
    yield block
    for child in block._children.values():
        yield from _all_blocks(child)


@pytest.mark.parametrize("name,minimum", [("densenet121", 29), ("densenet_bc_100_k12", 4),
                                          ("vgg13_bn", 32), ("googlenet_bn", 1)])
def test_minimum_input_size_is_exact(name, minimum):
    info = gmc.model_info(name)
    assert info.min_input_size == minimum
    net = gmc.get_model(name, check_input_size=False)
    net.initialize()
    assert net(np.zeros((1, info.in_channels, minimum, minimum))).shape == (1, 10)
    if minimum > 1:
        with pytest.raises(mx.base.MXNetError):
            net(np.zeros((1, info.in_channels, minimum - 1, minimum - 1)))
        checked = gmc.get_model(name)
        with pytest.raises(registry.InputSizeError, match=f"at least {minimum}x{minimum}"):
            checked(np.zeros((1, info.in_channels, minimum - 1, minimum - 1)))


@pytest.mark.parametrize("build,message", [
    (lambda: vgg_variant(12), "unknown VGG depth 12; valid depths: 11, 13, 16, 19"),
    (lambda: resnet_variant(20), "unknown ResNet depth 20; valid depths: 18, 34, 50, 101, 152"),
    (lambda: resnet_variant(50, version=3), "unknown ResNet version 3; valid versions: 1"),
    (lambda: resnet_variant(50, version=2, bottleneck_bias=True),
     "bottleneck_bias applies to version 1"),
    (lambda: resnet_variant(50, first_block_preact=True),
     "first_block_preact applies to version 2"),
    (lambda: densenet_variant(161), "unknown DenseNet depth 161; valid depths: 121, 169, 201, 264"),
    (lambda: densenet_bc_cifar(100, 24),
     "unknown CIFAR DenseNet-BC configuration: depth 100 with growth rate 24; valid "
     "configurations: depth 100 with growth rate 12, depth 250 with growth rate 24"),
    (lambda: densenet_bc((6,), growth_rate=32, num_channels=64, stem="svhn"),
     "unknown DenseNet stem 'svhn'; valid stems: imagenet, cifar"),
    (lambda: densenet_bc((6,), growth_rate=32, num_channels=64, compression=0),
     r"compression must be in \(0, 1\]"),
    (lambda: densenet_bc((6, 0), growth_rate=32, num_channels=64),
     r"num_convs_in_dense_blocks\[1\] must be a positive integer; got 0"),
    (lambda: densenet_bc((), growth_rate=32, num_channels=64), "at least one dense block"),
    (lambda: densenet_bc((6,), growth_rate=0, num_channels=64),
     "growth_rate must be a positive integer"),
    (lambda: googlenet(batch_norm=True), "pass hybrid=True"),
])
def test_bad_configurations_name_the_valid_ones(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_densenet_b_c_and_plain_variants_from_the_options():
    def counts(**options):
        return _counts(densenet_bc((16, 16, 16), growth_rate=12, num_channels=24, stem="cifar",
                                   **options), (1, 3, 32, 32))[0]
    bc, b, c = counts(), counts(compression=1), counts(bottleneck_width=None)
    assert b > bc and c > bc  # compression and bottlenecks both save parameters
    net = densenet_bc((2, 2), growth_rate=4, num_channels=8, stem="cifar", compression=1)
    assert [shape[1] for _, shape in _summary(net, (1, 1, 8, 8))][:4] == [8, 16, 16, 24]


def _summary(net, shape):
    from gluon_modern_cnn.tools.model_docs import summarize
    return summarize(net, shape).stages
