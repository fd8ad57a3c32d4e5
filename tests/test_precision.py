"""bfloat16 training of the hybridizable twins (``gluon_modern_cnn.training.precision``).

The graph checks run MXNet's type inference on the converted graphs, no kernel, so they run on any
CPU. Training in bfloat16 needs ``avx512_bf16`` or ``amx_bf16``; where the CPU has neither, those
tests check the refusal instead, and the one that trains is skipped with that reason.
"""
import contextlib
import json

import mxnet as mx
import numpy
import pytest
from mxnet import autograd, gluon, init

from gluon_modern_cnn.training import precision
from gluon_modern_cnn.training.precision import (ASSUME_BF16_ENV, BFloat16Unsupported,
                                        bfloat16_cpu_feature, check_bfloat16_support,
                                        operator_dtypes, use_bfloat16)
from gluon_modern_cnn.registry import get_model, list_models, model_info

TWINS = [name for name in list_models("*_hybrid") if model_info(name).twin]
FEATURE = bfloat16_cpu_feature()
needs_bf16_cpu = pytest.mark.skipif(
    FEATURE is None, reason="bfloat16 kernels need a CPU with avx512_bf16 or amx_bf16; "
                            "this one has neither (the refusal is tested instead)")


def _bf16_twin(name):
    net = get_model(name)
    net.initialize(init.Xavier())
    return use_bfloat16(net, check=False)


def test_every_chapter_model_has_a_twin_to_convert():
    assert {"alexnet_hybrid", "vgg11_small_hybrid", "nin_hybrid", "googlenet_hybrid",
            "lenet_bn_hybrid", "lenet_bn_scratch_hybrid", "resnet18_hybrid",
            "densenet_hybrid"} <= set(TWINS)


@pytest.mark.parametrize("name", TWINS)
def test_graph_computes_convolutions_in_bfloat16_and_keeps_float32_state(name):
    net = _bf16_twin(name)
    table = operator_dtypes(net)
    by_op = {}
    for entry in table:
        by_op.setdefault(entry.op, []).append(entry)
    # The arithmetic: every convolution and dense layer reads and writes bfloat16.
    heavy = by_op.get("Convolution", []) + by_op.get("FullyConnected", [])
    assert heavy, f"{name}: no convolution or dense layer in the graph"
    for entry in heavy:
        assert entry.outputs == ("bfloat16",), entry
        assert {dtype for _, dtype in entry.inputs} == {"bfloat16"}, entry
    # Batch norm's scale, shift and running statistics stay float32, whatever its data's type.
    for entry in by_op.get("BatchNorm", []):
        assert [dtype for _, dtype in entry.inputs[1:]] == ["float32"] * 4, entry
    # Master weights: the graph reads every parameter as float32 (a cast makes the copy).
    params = set(net.collect_params().keys())
    for entry in table:
        for source, dtype in entry.inputs:
            if source in params:
                assert dtype == "float32", (entry, source)
    assert {numpy.dtype(p.dtype).name for p in net.collect_params().values()} == {"float32"}
    # Operators MXNet's pass has no bfloat16 rule for run in float32.
    known = precision._known_ops()
    for entry in table:
        if entry.op not in known:
            assert "bfloat16" not in {dtype for _, dtype in entry.inputs}, entry
            assert "bfloat16" not in entry.outputs, entry
    # The network's outputs, hence the loss, are float32.
    with autograd.train_mode():
        inputs, out = net._get_graph(mx.np.zeros((1,)))
    with mx.util.np_array(False), mx.util.np_shape(False):
        _, out_types, _ = out.as_nd_ndarray().infer_type(data="float32")
    assert [numpy.dtype(t).name for t in out_types] == ["float32"] * len(out_types)


def test_the_float32_graph_is_untouched():
    net = get_model("resnet18_hybrid")
    net.initialize(init.Xavier())
    net.hybridize()
    table = operator_dtypes(net)
    assert {d for e in table for d in e.outputs} == {"float32"}
    assert "amp_cast" not in {e.op for e in table}


def test_conversion_keeps_the_blocks_parameters_and_names():
    reference = get_model("lenet_bn_hybrid")
    net = _bf16_twin("lenet_bn_hybrid")
    assert list(net.collect_params().keys())[0].endswith("weight")
    assert net._active and precision.uses_bfloat16(net)
    names = {k for k in net._collect_params_with_prefix()}
    assert names == {k for k in reference._collect_params_with_prefix()}


def test_book_code_is_refused():
    with pytest.raises(TypeError, match="_hybrid twin"):
        use_bfloat16(get_model("lenet_bn"), check=False)


def test_cpu_check_names_the_missing_feature(monkeypatch):
    with pytest.raises(BFloat16Unsupported, match="avx512_bf16 or amx_bf16.*has neither"):
        check_bfloat16_support([mx.cpu()], flags={"avx2", "fma"}, environ={})
    assert check_bfloat16_support([mx.cpu()], flags={"avx512f", "avx512_bf16"},
                                  environ={}) == "avx512_bf16"
    assert check_bfloat16_support([mx.cpu()], flags={"avx512_bf16", "amx_bf16"},
                                  environ={}) == "amx_bf16"
    with pytest.raises(BFloat16Unsupported, match="CPU only"):
        check_bfloat16_support([mx.gpu(0)], flags={"avx512_bf16"}, environ={})
    monkeypatch.setattr(precision, "cpu_flags", lambda: None)  # no /proc/cpuinfo
    with pytest.raises(BFloat16Unsupported, match="cannot be checked.*" + ASSUME_BF16_ENV):
        check_bfloat16_support([mx.cpu()], environ={})


def test_this_machine_is_checked():
    if FEATURE is None:
        with pytest.raises(BFloat16Unsupported, match="avx512_bf16 or amx_bf16"):
            check_bfloat16_support([mx.cpu()], environ={})
    else:
        assert check_bfloat16_support([mx.cpu()], environ={}) == FEATURE


def test_override_probes_the_kernels():
    """The expert override skips reading the flags, not the truth: a bfloat16 step is tried."""
    precision.probe_bfloat16_kernels.cache_clear()
    if FEATURE is None:
        with pytest.raises(BFloat16Unsupported,
                           match="primitive descriptor.*avx512_bf16 or amx_bf16.*"
                                 + ASSUME_BF16_ENV):
            check_bfloat16_support([mx.cpu()], environ={ASSUME_BF16_ENV: "1"})
    else:
        assert check_bfloat16_support([mx.cpu()], environ={ASSUME_BF16_ENV: "1"}) == "assumed"


def test_settings_and_bench_config_refuse_what_cannot_run():
    from gluon_modern_cnn.bench import BenchConfig
    from gluon_modern_cnn.training.experiment import resolve_settings
    with pytest.raises(ValueError, match="use 'lenet_bn_hybrid'"):
        resolve_settings("lenet_bn", dtype="bfloat16")
    with pytest.raises(ValueError, match="dtype must be one of float32, bfloat16"):
        resolve_settings("lenet_bn_hybrid", dtype="float16")
    assert resolve_settings("lenet_bn_hybrid", dtype="bfloat16").hybridize
    with pytest.raises(ValueError, match="hybridize=True"):
        BenchConfig("lenet_bn_hybrid", dtype="bfloat16").resolved()
    if FEATURE is None:
        with pytest.raises(ValueError, match="avx512_bf16 or amx_bf16"):
            BenchConfig("lenet_bn_hybrid", dtype="bfloat16", hybridize=True).resolved()


@pytest.mark.skipif(FEATURE is not None, reason="this CPU can train in bfloat16")
def test_train_command_refuses_before_touching_the_output(tmp_path, capsys):
    from gluon_modern_cnn.cli import main
    out = tmp_path / "run"
    out.mkdir()
    (out / "settings.json").write_text(json.dumps({"settings": {}}))
    status = main(["train", "lenet_bn_hybrid", "--dtype", "bfloat16", "--epochs", "1",
                   "--out", str(out), "--overwrite"])
    assert status == 2
    assert "avx512_bf16 or amx_bf16" in capsys.readouterr().err
    assert (out / "settings.json").exists()


@needs_bf16_cpu
@pytest.mark.parametrize("name", ["lenet_bn_hybrid", "lenet_bn_scratch_hybrid"])
def test_bfloat16_trains(name, fashion_mnist_root):
    """Loss falls on real data, and weights, gradients, statistics and output stay float32."""
    from gluon_modern_cnn.data import load_data_fashion_mnist
    mx.random.seed(0)
    net = get_model(name)
    net.initialize(init.Xavier())
    net.hybridize(static_alloc=True, static_shape=True)
    use_bfloat16(net)
    train_iter, _ = load_data_fashion_mnist(256, root=fashion_mnist_root, fast=True, seed=0)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.9})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    stats = {k: p for k, p in net.collect_params().items() if "running" in k or "moving" in k}
    before = {k: p.data().asnumpy().copy() for k, p in stats.items()}
    losses = []
    for step, (X, y) in enumerate(train_iter):
        with autograd.record():
            y_hat = net(X)
            loss = loss_fn(y_hat, y)
        loss.backward()
        trainer.step(X.shape[0])
        assert y_hat.dtype == loss.dtype == mx.np.float32
        losses.append(float(loss.mean()))
        if step == 60:
            break
    assert all(l == l for l in losses), losses  # no NaN
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:5]) / 5, losses
    for p in net.collect_params().values():
        assert p.data().dtype == mx.np.float32
        if p.grad_req != "null":
            assert p.grad().dtype == mx.np.float32
    assert stats and any((p.data().asnumpy() != before[k]).any() for k, p in stats.items())


@pytest.mark.parametrize("name", ["lenet_bn_scratch_hybrid", "resnet18_hybrid"])
def test_the_converted_graph_gets_as_far_as_the_cpu_allows(name):
    """Deferred initialization, shape inference and the cached graph all work on the converted
    graph; without the CPU feature the step stops only at oneDNN's bfloat16 kernel."""
    net = get_model(name)
    net.hybridize(static_alloc=True, static_shape=True)
    use_bfloat16(net, check=False)
    net.initialize(init.Xavier())  # deferred: shapes come from the converted graph
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})

    def step():
        with autograd.record():
            l = gluon.loss.SoftmaxCrossEntropyLoss()(net(mx.np.ones((4, 1, 32, 32))),
                                                     mx.np.zeros(4))
        l.backward()
        trainer.step(4)
        return float(l.sum())

    if FEATURE is None:
        with pytest.raises(mx.base.MXNetError, match="primitive descriptor"):
            step()
        # The failed step's other asynchronous operations fail too; collect their errors now
        # rather than at MXNet's shutdown, where they would print after the test summary.
        with contextlib.suppress(mx.base.MXNetError):
            mx.npx.waitall()
    else:
        assert numpy.isfinite(step())
    assert list(net.collect_params().values())[0].shape[1] == 1  # shapes were inferred
    assert {numpy.dtype(p.dtype).name for p in net.collect_params().values()} == {"float32"}
