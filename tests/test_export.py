"""Export to the MXNet and ONNX formats: every ``_hybrid`` model of the registry round-trips with
the same predictions, the numpy-mode operators convert with numpy semantics, and bad inputs raise
clear errors.

Tolerances: the reloaded MXNet model runs the same kernels on the same parameters, so its outputs
must be bit-identical. onnxruntime uses other kernels (other summation orders), so its outputs must
agree within ``rtol=1e-4`` plus ``atol=1e-5`` times the largest output magnitude (float32; the
observed differences are below 2e-6 times the largest output).

The ONNX tests need the ``onnx`` extra (onnx 1.15.0 and onnxruntime 1.16.3, numpy >= 1.24.2).
"""
import json
import shutil
import subprocess
import sys
import textwrap

import numpy
import pytest

import gluon_modern_cnn  # noqa: F401  (set_np)
import mxnet as mx
from mxnet import autograd, init
from mxnet.gluon import nn

from gluon_modern_cnn.tools.export import export_mxnet, export_onnx, load_mxnet
from gluon_modern_cnn.registry import get_model, list_models, model_info

HYBRID_MODELS = list_models("*_hybrid")
RTOL, ATOL_FRACTION = 1e-4, 1e-5


def _onnxruntime():
    return pytest.importorskip("onnxruntime",
                               reason='needs the onnx extra: pip install -e ".[onnx]"')


def _run_onnx(path, x: numpy.ndarray) -> numpy.ndarray:
    session = _onnxruntime().InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"data": x})
    return out


def _assert_close(actual: numpy.ndarray, expected: numpy.ndarray) -> None:
    assert actual.shape == expected.shape
    numpy.testing.assert_allclose(actual, expected, rtol=RTOL,
                                  atol=ATOL_FRACTION * max(float(numpy.abs(expected).max()), 1e-30))


def _test_size(name: str) -> int:
    # The chapter's 224-pixel models spend most of their export time on the dense layers, whose
    # size grows with the input; 64 pixels (or the network's minimum) keeps every layer type.
    info = model_info(name)
    return min(info.input_size, max(info.min_input_size, 64))


def _trained_like(net, seed: int = 0) -> None:
    """Give batch-norm layers non-default statistics and scales, as training would."""
    rng = numpy.random.RandomState(seed)
    for param in net.collect_params().values():
        if param.name.endswith(("running_mean", "beta")):
            param.set_data(mx.np.array(rng.uniform(-0.5, 0.5, size=param.shape)))
        elif param.name.endswith(("running_var", "gamma")):
            param.set_data(mx.np.array(rng.uniform(0.5, 1.5, size=param.shape)))


def _build(name: str, *, batch: int = 2, seed: int = 0, **kwargs):
    """A registry model with trained-like parameters, an input batch and its prediction."""
    with mx.name.NameManager():
        net = get_model(name, **kwargs)
    net.initialize(init.Xavier())
    size = _test_size(name)
    x = mx.np.array(numpy.random.RandomState(seed).uniform(
        size=(batch, model_info(name).in_channels, size, size)).astype("float32"))
    net(x)  # completes deferred initialization
    _trained_like(net, seed)
    return net, x, net(x).asnumpy()


@pytest.fixture(scope="module", params=HYBRID_MODELS)
def model_case(request):
    return (request.param,) + _build(request.param)


def test_every_book_model_has_a_hybrid_twin_to_export():
    assert {"alexnet_hybrid", "vgg11_hybrid", "vgg11_small_hybrid", "nin_hybrid",
            "googlenet_hybrid", "lenet_bn_hybrid", "resnet18_hybrid",
            "densenet_hybrid"} <= set(HYBRID_MODELS)


def test_mxnet_export_reloads_with_identical_outputs(model_case, tmp_path):
    name, net, x, expected = model_case
    files = export_mxnet(net, tmp_path / name, input_shape=x.shape)
    assert [f.name for f in files] == [f"{name}-symbol.json", f"{name}-0000.params"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f.name for f in files)
    out = load_mxnet(tmp_path / name)(x)
    assert isinstance(out, mx.np.ndarray)
    numpy.testing.assert_array_equal(out.asnumpy(), expected)


def test_onnx_export_runs_in_onnxruntime_with_equal_outputs(model_case, tmp_path):
    _onnxruntime()
    import onnx
    name, net, x, expected = model_case
    path = export_onnx(net, tmp_path / f"{name}.onnx", input_shape=x.shape)
    model = onnx.load(str(path))
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 13)]
    assert [i.name for i in model.graph.input] == ["data"]  # the weights are initializers only
    _assert_close(_run_onnx(path, x.asnumpy()), expected)


def test_exported_mxnet_model_takes_other_batch_sizes_and_an_epoch(tmp_path):
    net, x, expected = _build("lenet_bn_hybrid", batch=3)
    export_mxnet(net, tmp_path / "lenet", input_shape=(1,) + x.shape[1:], epoch=7)
    assert (tmp_path / "lenet-0007.params").is_file()
    _assert_close(load_mxnet(tmp_path / "lenet", epoch=7)(x).asnumpy(), expected)


def test_onnx_dynamic_batch(tmp_path):
    _onnxruntime()
    import onnx
    net, x, expected = _build("lenet_bn_hybrid", batch=3)
    static = export_onnx(net, tmp_path / "static.onnx", input_shape=(1,) + x.shape[1:])
    dynamic = export_onnx(net, tmp_path / "dynamic.onnx", input_shape=(1,) + x.shape[1:],
                          dynamic_batch=True)

    def input_dims(path):
        dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
        return [d.dim_value or None for d in dims]
    assert input_dims(static) == [1, 1, 28, 28]
    assert input_dims(dynamic) == [None, 1, 28, 28]
    _assert_close(_run_onnx(dynamic, x.asnumpy()), expected)


class _Lambda(nn.HybridBlock):
    """A block computing ``fn(F, x)``: one numpy-mode expression per conversion test."""

    def __init__(self, fn, **kwargs):
        super().__init__(**kwargs)
        self.fn = fn

    def hybrid_forward(self, F, x):
        return self.fn(F, x)


def _bn_statistics(x, axes, keepdims=True):
    """Section 7.5.3's minibatch mean and variance."""
    mean = x.mean(axis=axes, keepdims=keepdims)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=keepdims)
    return mean, var


def _standardize_channels(F, x):
    mean, var = _bn_statistics(x, (0, 2, 3))
    return (x - mean) / F.np.sqrt(var + 1e-5)


def _standardize_features(F, x):
    mean, var = _bn_statistics(x, 0, keepdims=False)
    return (x - mean) * (var * 0.5)


def _reductions(F, x):
    return (x.sum() * x.mean() + x.max(axis=1, keepdims=True) - x.min(axis=-1, keepdims=True)
            + F.np.sum(x, axis=(0, 1)) + x.prod(axis=0))


def _unary(F, x):
    return (F.np.exp(-F.np.abs(x)) + F.np.log(F.np.square(x) + 1) + F.np.tanh(x)
            + F.npx.sigmoid(x) + F.np.reciprocal(x + 3) + F.np.negative(x) + F.npx.relu(x))


def _reshapes(F, x):
    rows = F.np.concatenate((F.npx.reshape(x, (-2, -1)), F.np.copy(x).reshape(2, -1)), axis=1)
    return rows + F.np.stack((x.reshape(2, -1), x.reshape(2, -1)), axis=-1).reshape(2, -1)


# name: (expression, input shape, operators its graph must contain, lowest opset). Reductions
# other than sums over given axes need opset 18 (their axes became an input there).
NUMPY_EXPRESSIONS = {
    "batch_norm_statistics_4d": (
        _standardize_channels, (4, 3, 5, 5),
        {"_npi_mean", "_npi_subtract", "_npi_power_scalar", "_npi_add_scalar", "_npi_sqrt",
         "_npi_true_divide"}, 18),
    "batch_norm_statistics_2d": (
        _standardize_features, (4, 6),
        {"_npi_mean", "_npi_subtract", "_npi_multiply", "_npi_multiply_scalar"}, 18),
    "reductions": (
        _reductions, (3, 4),
        {"_np_sum", "_npi_mean", "_np_max", "_np_min", "_np_prod", "_npi_add"}, 18),
    "sums_over_axes": (
        lambda F, x: x - x.sum(axis=(0, 2), keepdims=True) * F.np.sum(x, axis=1).sum(axis=0),
        (2, 3, 4), {"_np_sum", "_npi_subtract", "_npi_multiply"}, 13),
    "full_reductions_are_0d": (
        lambda F, x: F.np.mean(x) - x.sum() + x.max() * x.min() + x.prod(), (3, 4),
        {"_npi_mean", "_np_sum", "_np_max", "_np_min", "_np_prod"}, 13),
    "scalar_on_the_left": (
        lambda F, x: (1 - x) * (2 / (x + 3)) + 2 ** x, (2, 5),
        {"_npi_rsubtract_scalar", "_npi_rtrue_divide_scalar", "_npi_rpower_scalar"}, 13),
    "unary": (
        _unary, (2, 5),
        {"_npi_exp", "_npi_absolute", "_npi_log", "_npi_square", "_npi_tanh", "_npx_sigmoid",
         "_npi_reciprocal", "_npi_negative", "_npx_relu"}, 13),
    "binary_broadcasting": (
        lambda F, x: F.np.maximum(x, x.sum(axis=0) * 0.25) + F.np.power(x + 1, x.sum(axis=0)),
        (3, 4), {"broadcast_maximum", "_npi_power"}, 13),
    "reshapes": (
        _reshapes, (2, 3, 2),
        {"_npi_concatenate", "_npx_reshape", "_np_reshape", "_np_copy", "_npi_stack"}, 13),
}


@pytest.mark.parametrize("opset", [13, 18, 19])
@pytest.mark.parametrize("case", sorted(NUMPY_EXPRESSIONS))
def test_numpy_mode_operators_convert_with_numpy_semantics(case, opset, tmp_path):
    _onnxruntime()
    import onnx
    fn, shape, ops, lowest_opset = NUMPY_EXPRESSIONS[case]
    net = _Lambda(fn)
    x = mx.np.array(numpy.random.RandomState(1).uniform(0.1, 1.0, size=shape).astype("float32"))
    expected = net(x).asnumpy()
    symbol_file, _ = export_mxnet(net, tmp_path / case, input_shape=shape)
    assert ops <= {n["op"] for n in json.loads(symbol_file.read_text())["nodes"]}
    path = tmp_path / f"{case}.onnx"
    if opset < lowest_opset:
        with pytest.raises(NotImplementedError, match=r"over axes .* needs opset 18 or later"):
            export_onnx(net, path, input_shape=shape, opset=opset)
        assert not path.exists()
        return
    export_onnx(net, path, input_shape=shape, opset=opset)
    assert onnx.load(str(path)).opset_import[0].version == opset
    _assert_close(_run_onnx(path, x.asnumpy()), expected)  # also the shape: () for 0-d results


class _ScratchBatchNorm(nn.HybridBlock):
    """Section 7.5.3's batch normalization written with ``F``: batch statistics in training,
    moving statistics in prediction (a Python branch that hybridize() freezes at its first
    trace)."""

    def __init__(self, num_features, **kwargs):
        super().__init__(**kwargs)
        shape = (1, num_features, 1, 1)
        self.gamma = self.params.get("gamma", shape=shape, init=init.Uniform(1.0))
        self.beta = self.params.get("beta", shape=shape, init=init.Uniform(1.0))
        self.moving_mean = self.params.get("moving_mean", shape=shape, init=init.Uniform(1.0),
                                           grad_req="null")
        self.moving_var = self.params.get("moving_var", shape=shape, init=init.Constant(2.0),
                                          grad_req="null")

    def hybrid_forward(self, F, X, gamma, beta, moving_mean, moving_var):
        if autograd.is_training():
            mean, var = _bn_statistics(X, (0, 2, 3))
        else:
            mean, var = moving_mean, moving_var
        return gamma * (X - mean) / F.np.sqrt(var + 1e-5) + beta


def test_export_traces_prediction_mode_and_leaves_the_net_alone(tmp_path):
    _onnxruntime()
    net = _ScratchBatchNorm(3)
    net.initialize()
    x = mx.np.array(numpy.random.RandomState(2).uniform(size=(4, 3, 5, 5)).astype("float32"))
    predicted = net(x).asnumpy()
    net.hybridize()
    with autograd.record():
        trained = net(x).asnumpy()  # the cached graph is now the training branch
    assert not numpy.allclose(trained, predicted)

    _assert_close(_run_onnx(export_onnx(net, tmp_path / "bn.onnx", input_shape=x.shape),
                            x.asnumpy()), predicted)
    export_mxnet(net, tmp_path / "bn", input_shape=x.shape)
    numpy.testing.assert_array_equal(load_mxnet(tmp_path / "bn")(x).asnumpy(), predicted)
    with autograd.record():  # the net's own cached graph was not replaced by the export's
        numpy.testing.assert_array_equal(net(x).asnumpy(), trained)


@pytest.mark.parametrize("name", ["resnet18", "lenet_bn", "lenet_bn_scratch"])
@pytest.mark.parametrize("export", [export_mxnet, export_onnx])
def test_book_block_models_point_to_the_hybrid_twin(name, export, tmp_path):
    net = get_model(name)
    net.initialize()
    with pytest.raises(TypeError, match=r"nn\.Block.*'_hybrid'.*resnet18_hybrid"):
        export(net, tmp_path / "model", input_shape=model_info(name).input_shape)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fn, message", [
    (lambda F, x: F.np.cumsum(x, axis=1) + 1,
     r"no converter for the operator\(s\) _np_cumsum \(used by .*cumsum"),
    (lambda F, x: F.npx.reshape(x, (-2, -3, -1)),
     r"_npx_reshape does not support the shape code -3"),
    (lambda F, x: F.np.concatenate((x, x), axis=None), r"_npi_concatenate with axis=None"),
])
def test_unsupported_operator_is_named(fn, message, tmp_path):
    _onnxruntime()
    with pytest.raises(NotImplementedError, match=message):
        export_onnx(_Lambda(fn), tmp_path / "model.onnx", input_shape=(2, 1, 3))
    assert list(tmp_path.iterdir()) == []


class _LayersWithDefaults(nn.HybridBlock):
    """Layers called through npx with MXNet's default attributes: FullyConnected flattens by
    default (the exporter's translation assumes it does not), BatchNorm fixes gamma to 1."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.weight = self.params.get("weight", shape=(5, 12), init=init.Uniform(1.0))
        self.bias = self.params.get("bias", shape=(5,), init=init.Uniform(1.0))
        self.gamma = self.params.get("gamma", shape=(3,), init=init.Constant(3.0))
        self.beta = self.params.get("beta", shape=(3,), init=init.Constant(0.5))
        self.mean = self.params.get("mean", shape=(3,), init=init.Constant(0.2), grad_req="null")
        self.var = self.params.get("var", shape=(3,), init=init.Constant(2.0), grad_req="null")

    def hybrid_forward(self, F, x, weight, bias, gamma, beta, mean, var):
        fixed = F.npx.batch_norm(x, gamma, beta, mean, var)
        scaled = F.npx.batch_norm(x, gamma, beta, mean, var, fix_gamma=False)
        return F.npx.fully_connected(fixed + scaled, weight, bias, num_hidden=5)


def test_mxnet_layer_defaults_are_exported_as_computed(tmp_path):
    _onnxruntime()
    net = _LayersWithDefaults()
    net.initialize()
    x = mx.np.array(numpy.random.RandomState(3).uniform(size=(2, 3, 2, 2)).astype("float32"))
    expected = net(x).asnumpy()
    assert expected.shape == (2, 5)  # the 4-D input was flattened
    _assert_close(_run_onnx(export_onnx(net, tmp_path / "m.onnx", input_shape=x.shape),
                            x.asnumpy()), expected)


def test_params_file_of_another_architecture_is_refused(tmp_path):
    lenet, _, _ = _build("lenet_bn_hybrid")
    densenet, _, _ = _build("densenet_hybrid", batch=1)
    export_mxnet(lenet, tmp_path / "lenet", input_shape=(1, 1, 28, 28))
    _, densenet_params = export_mxnet(densenet, tmp_path / "densenet", input_shape=(1, 1, 64, 64))
    shutil.copy(densenet_params, tmp_path / "lenet-0000.params")
    with pytest.raises(ValueError, match=r"lenet-0000.params does not belong to the graph in .*"
                                         r"lenet-symbol.json.*missing \d+ parameters"):
        load_mxnet(tmp_path / "lenet")


def test_params_file_with_other_shapes_is_refused(tmp_path):
    # Same architecture and parameter names, but 5 instead of 10 classes.
    ten, _, _ = _build("lenet_bn_hybrid")
    five, _, _ = _build("lenet_bn_hybrid", num_classes=5)
    export_mxnet(ten, tmp_path / "ten", input_shape=(1, 1, 28, 28))
    _, five_params = export_mxnet(five, tmp_path / "five", input_shape=(1, 1, 28, 28))
    shutil.copy(five_params, tmp_path / "ten-0000.params")
    with pytest.raises(ValueError, match=r"ten-0000.params does not belong.*dense2"):
        load_mxnet(tmp_path / "ten")


def test_missing_or_foreign_files_are_reported(tmp_path):
    net, _, _ = _build("lenet_bn_hybrid")
    export_mxnet(net, tmp_path / "lenet", input_shape=(1, 1, 28, 28))
    with pytest.raises(FileNotFoundError,
                       match=r"lenet-0003.params does not exist.*lenet-0000.params"):
        load_mxnet(tmp_path / "lenet", epoch=3)
    with pytest.raises(FileNotFoundError, match="other-symbol.json does not exist"):
        load_mxnet(tmp_path / "other")
    (tmp_path / "lenet-0000.params").write_text("not parameters")
    with pytest.raises(ValueError, match="is not an MXNet parameter file"):
        load_mxnet(tmp_path / "lenet")


def test_existing_files_are_not_overwritten_unless_asked(tmp_path):
    net, x, expected = _build("lenet_bn_hybrid")
    symbol_file, params_file = export_mxnet(net, tmp_path / "lenet", input_shape=x.shape)
    before = params_file.read_bytes()
    other, _, _ = _build("lenet_bn_hybrid", seed=1)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_mxnet(other, tmp_path / "lenet", input_shape=x.shape)
    assert params_file.read_bytes() == before
    export_mxnet(other, tmp_path / "lenet", input_shape=x.shape, overwrite=True)
    assert params_file.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet-0000.params", "lenet-symbol.json"]

    onnx_file = tmp_path / "lenet.onnx"
    onnx_file.write_bytes(b"a user's file")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_onnx(net, onnx_file, input_shape=x.shape)
    assert onnx_file.read_bytes() == b"a user's file"


@pytest.mark.parametrize("input_shape", [(), (1, 1, 0, 28), "1x28x28", (1, 1, 28.0, 28), None])
@pytest.mark.parametrize("export", [export_mxnet, export_onnx])
def test_bad_input_shape(export, input_shape, tmp_path):
    net, _, _ = _build("lenet_bn_hybrid")
    with pytest.raises(ValueError, match="input_shape must be a tuple of positive integers"):
        export(net, tmp_path / "model", input_shape=input_shape)


def test_input_too_small_or_uninitialized_net(tmp_path):
    net, _, _ = _build("lenet_bn_hybrid")
    with pytest.raises(ValueError, match=r"cannot run on inputs of shape \(1, 1, 8, 8\)"):
        export_mxnet(net, tmp_path / "small", input_shape=(1, 1, 8, 8))
    fresh = get_model("lenet_bn_hybrid")
    with pytest.raises(ValueError, match=r"uninitialized parameters.*net.initialize\(\)"):
        export_mxnet(fresh, tmp_path / "fresh", input_shape=(1, 1, 28, 28))
    assert list(tmp_path.iterdir()) == []


def test_block_reading_shapes_cannot_be_traced(tmp_path):
    net = _Lambda(lambda F, x: x.reshape(x.shape[0], -1))
    with pytest.raises(ValueError, match=r"cannot be traced symbolically.*F\.np / F\.npx"):
        export_mxnet(net, tmp_path / "model", input_shape=(2, 3, 4))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("opset", [12, 20, "13"])
def test_unsupported_opset(opset, tmp_path):
    net, _, _ = _build("lenet_bn_hybrid")
    with pytest.raises(ValueError, match=r"opset must be one of \(13, 14, 15, 16, 17, 18, 19\)"):
        export_onnx(net, tmp_path / "m.onnx", input_shape=(1, 1, 28, 28), opset=opset)


def test_missing_onnx_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` fail
    net, _, _ = _build("lenet_bn_hybrid")
    with pytest.raises(ImportError, match=r"gluon-modern-cnn\[onnx\]"):
        export_onnx(net, tmp_path / "m.onnx", input_shape=(1, 1, 28, 28))


def test_converters_register_on_first_onnx_export_only(tmp_path):
    _onnxruntime()
    script = textwrap.dedent(f"""
        import gluon_modern_cnn.tools.export as export
        from mxnet.gluon import nn
        from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph

        class Net(nn.HybridBlock):
            def hybrid_forward(self, F, x):
                return F.npx.relu(x + x)

        assert "_npx_relu" not in MXNetGraph.registry_.get(12, {{}})
        export.export_onnx(Net(), r"{tmp_path / 'a.onnx'}", input_shape=(2, 3))
        first = dict(MXNetGraph.registry_[12])
        export.export_onnx(Net(), r"{tmp_path / 'b.onnx'}", input_shape=(2, 3))
        assert MXNetGraph.registry_[12] == first and "_npi_add" in first
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.strip() == "ok", result.stderr
