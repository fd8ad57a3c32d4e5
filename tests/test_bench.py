"""The benchmark harness: FLOP counts checked by hand, statistics, records, report, a tiny run.

No timing is asserted here: speed targets are judged by ``benchmarks/run_chapter.py`` from the
records it writes.
"""
import dataclasses
import json
import math

import numpy
import pytest
from mxnet.gluon import nn

from gluon_modern_cnn import cli
from gluon_modern_cnn.bench import harness, isolation, records, report, stats
from gluon_modern_cnn.bench.harness import BenchConfig, book_config, fast_config
from gluon_modern_cnn.bench.peak import measure_peak
from gluon_modern_cnn.tools.flops import count_flops, layer_costs
from gluon_modern_cnn.models.resnet import HybridResidual
from gluon_modern_cnn.registry import model_info


# ---------------------------------------------------------------------------------------------
# FLOPs of small layers, by hand
# ---------------------------------------------------------------------------------------------

def _single(layer, input_shape):
    net = nn.HybridSequential()
    net.add(layer)
    costs = layer_costs(net, input_shape)
    assert len(costs) == 1
    return costs[0]


def test_conv2d_flops_by_hand(fresh_names):
    # 2 -> 4 channels, 3x3 kernel, no padding, on 5x5: output 4 x 3 x 3 = 36 values, each
    # 2 * (2 * 3 * 3) = 36 multiply-add FLOPs plus 1 for the bias, then 1 for the ReLU.
    cost = _single(nn.Conv2D(4, kernel_size=3, activation="relu"), (1, 2, 5, 5))
    assert cost.output_shape == (1, 4, 3, 3)
    assert cost.flops == 36 * (36 + 1) + 36
    assert cost.parameters == 4 * 2 * 3 * 3 + 4


def test_conv2d_with_stride_and_padding(fresh_names):
    # 1 -> 3 channels, 5x5 kernel, padding 2, stride 2 on 8x8: output 3 x 4 x 4 = 48 values,
    # each 2 * 25 + 1 = 51 FLOPs.
    cost = _single(nn.Conv2D(3, kernel_size=5, padding=2, strides=2), (1, 1, 8, 8))
    assert cost.output_shape == (1, 3, 4, 4)
    assert cost.flops == 48 * 51


def test_dense_flops_by_hand(fresh_names):
    # 5 inputs -> 3 outputs: 3 * (2 * 5 + 1) = 33.
    cost = _single(nn.Dense(3), (1, 5))
    assert cost.flops == 33
    assert cost.parameters == 5 * 3 + 3


def test_pooling_flops_by_hand(fresh_names):
    # 2x2 max pooling, stride 2, on 3 x 4 x 4: 3 x 2 x 2 = 12 outputs of 4 comparisons.
    assert _single(nn.MaxPool2D(pool_size=2, strides=2), (1, 3, 4, 4)).flops == 12 * 4
    # Global average pooling reads every input value once: 3 * 4 * 4.
    assert _single(nn.GlobalAvgPool2D(), (1, 3, 4, 4)).flops == 48


def test_batch_norm_flops_by_hand(fresh_names):
    # Prediction mode: subtract, divide, scale, shift per value: 4 * 3 * 4 * 4.
    cost = _single(nn.BatchNorm(), (1, 3, 4, 4))
    assert cost.flops == 4 * 48
    assert cost.parameters == 2 * 3  # gamma and beta; the running statistics are not trained


def test_residual_block_flops_by_hand(fresh_names):
    # Section 7.6's block with 2 channels on 2 x 4 x 4, no 1x1 shortcut: two 3x3 convolutions with
    # padding 1 (32 outputs of 2 * 2 * 9 + 1 = 37 FLOPs each), two batch norms (4 per value), and
    # what the block's forward does itself: the ReLU after bn1, the shortcut addition and the
    # final ReLU, 32 values each.
    block = HybridResidual(2)
    conv, bn, own = 32 * 37, 4 * 32, 3 * 32
    assert count_flops(block, (1, 2, 4, 4)) == 2 * conv + 2 * bn + own
    # A training step is counted as three forward passes.
    assert count_flops(block, (1, 2, 4, 4), training=True) == 3 * (2 * conv + 2 * bn + own)


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------

def test_median_and_iqr_of_known_numbers():
    s = stats.summarize([5, 1, 4, 2, 3])
    assert (s.median, s.q1, s.q3, s.iqr) == (3, 2, 4, 2)
    assert s.values == (5, 1, 4, 2, 3)  # kept in measurement order
    even = stats.summarize([1, 2, 3, 10])
    # Linear interpolation between order statistics, numpy's default.
    assert even.median == 2.5
    assert even.q1 == pytest.approx(1.75) and even.q3 == pytest.approx(4.75)
    assert even.q1 == pytest.approx(numpy.percentile([1, 2, 3, 10], 25))
    assert stats.summarize([7]).iqr == 0


def test_summary_round_trip_and_scaling():
    s = stats.summarize([10, 20, 30, 40, 50])
    assert stats.Summary.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    scaled = s.scaled(0.5)
    assert (scaled.median, scaled.iqr) == (15, 10)


@pytest.mark.parametrize("values", [[], [1.0, math.nan], [math.inf]])
def test_summarize_rejects_missing_or_non_finite(values):
    with pytest.raises(ValueError):
        stats.summarize(values)


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------

def _config(model, label, data, **settings):
    return {**BenchConfig(model, label=label, data=data, steps=2, **settings).resolved().to_dict()}


def _summary(median):
    return stats.summarize([median * 0.95, median, median * 1.05, median * 0.98, median]).to_dict()


def _train_record(model, label, data, rate, *, run_id="run-a", e2e=None, flops=10 ** 9,
                  utilization=0.5, rss=500 * 2 ** 20, **settings):
    return records.new_record(
        "train", run_id=run_id, config=_config(model, label, data, **settings),
        flops_per_example=flops,
        examples_per_sec={"step": _summary(rate), "end_to_end": _summary(e2e or rate)},
        gflops=_summary(rate * flops / 1e9),
        peak={"gflops": 100.0, "dtype": "float32", "conv": _summary(100.0),
              "matmul": _summary(90.0), "conv_shape": [32, 256, 28, 3], "matmul_size": 2048},
        utilization=utilization,
        memory={"baseline_rss_bytes": 200 * 2 ** 20, "peak_rss_bytes": rss, "method": "test",
                "fresh_process": True},
        load_average={"before": [0.5, 0.5, 0.5], "after": [0.6, 0.5, 0.5]},
        duration_seconds=12.5)


def test_record_carries_machine_software_and_settings():
    r = _train_record("resnet18", "book", "real", 25.0)
    for field in ("schema", "kind", "run_id", "timestamp", "package", "machine", "environment",
                  "config", "flops_per_example", "examples_per_sec", "gflops", "memory"):
        assert field in r
    assert r["machine"]["mxnet"].startswith("1.9")
    assert "MKLDNN" in r["machine"]["mxnet_features"]
    assert isinstance(r["machine"]["cpu_cores"], int) and r["machine"]["cpu_cores"] >= 1
    assert r["config"]["batch_size"] == 256 and r["config"]["input_size"] == 96  # the book's
    records.validate_record(json.loads(json.dumps(r)))  # survives a JSON round trip


def test_environment_records_thread_settings():
    env = records.benchmark_environment({"OMP_NUM_THREADS": "2", "MXNET_ENGINE_TYPE": "Naive",
                                         "KMP_AFFINITY": "compact", "HOME": "/root"})
    assert env == {"KMP_AFFINITY": "compact", "MXNET_ENGINE_TYPE": "Naive",
                   "OMP_NUM_THREADS": "2"}


@pytest.mark.parametrize("change, problem", [
    (lambda r: r.pop("machine"), "machine"),
    (lambda r: r.update(flops_per_example="many"), "flops_per_example"),
    (lambda r: r["examples_per_sec"].pop("end_to_end"), "end_to_end"),
    (lambda r: r["config"].update(batch_size=1.5), "batch_size"),
    (lambda r: r.update(kind="guess"), "kind"),
])
def test_invalid_records_are_named(change, problem):
    r = _train_record("alexnet", "book", "real", 14.0)
    change(r)
    with pytest.raises(ValueError, match=problem):
        records.validate_record(r)


def test_append_keeps_earlier_records(tmp_path):
    path = tmp_path / "results" / "bench.jsonl"
    first = _train_record("alexnet", "book", "real", 14.0)
    second = _train_record("alexnet_hybrid", "fast", "real", 17.0, hybridize=True)
    records.append_records(path, [first])
    records.append_records(path, [second])
    assert [r["config"]["model"] for r in records.read_records(path)] == ["alexnet",
                                                                          "alexnet_hybrid"]
    assert len(path.read_text().splitlines()) == 2


def test_append_after_an_interrupted_write_starts_a_new_line(tmp_path):
    path = tmp_path / "bench.jsonl"
    path.write_text(json.dumps(_train_record("nin", "book", "real", 13.0)))  # no final newline
    records.append_records(path, [_train_record("nin_hybrid", "fast", "real", 20.0,
                                                hybridize=True)])
    assert len(records.read_records(path)) == 2


def test_an_invalid_record_writes_nothing(tmp_path):
    path = tmp_path / "bench.jsonl"
    good = _train_record("nin", "book", "real", 13.0)
    with pytest.raises(ValueError, match="record 1 not written"):
        records.append_records(path, [good, {"kind": "train"}])
    assert not path.exists()


def test_a_corrupt_line_is_reported_with_its_number(tmp_path):
    path = tmp_path / "bench.jsonl"
    records.append_records(path, [_train_record("nin", "book", "real", 13.0)])
    with open(path, "a") as f:
        f.write("{not json\n")
    with pytest.raises(ValueError, match=r"bench.jsonl, line 2"):
        records.read_records(path)
    with pytest.raises(FileNotFoundError, match="run_chapter"):
        records.read_records(tmp_path / "missing.jsonl")


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def run_records():
    """A small run: AlexNet below targets 1 and 3, ResNet-18 meeting them, LeNet data-bound."""
    peak = records.new_record(
        "peak", run_id="run-b", peak={"gflops": 150.0, "dtype": "float32",
                                      "conv": _summary(150.0), "matmul": _summary(140.0),
                                      "conv_shape": [32, 256, 28, 3], "matmul_size": 2048},
        load_average={"before": [0.2, 0.2, 0.2], "after": [0.3, 0.2, 0.2]})
    fast = dict(hybridize=True, static_alloc=True, static_shape=True)
    return [
        peak,
        _train_record("alexnet", "book", "real", 14.5, run_id="run-b"),
        _train_record("alexnet_hybrid", "fast", "real", 17.0, run_id="run-b", loader="fast",
                      **fast),
        _train_record("alexnet_hybrid", "fast-compute", "synthetic", 17.1, run_id="run-b",
                      utilization=0.55, **fast),
        _train_record("resnet18", "book", "real", 25.2, run_id="run-b"),
        _train_record("resnet18_hybrid", "fast", "real", 49.0, run_id="run-b", loader="fast",
                      **fast),
        _train_record("resnet18_hybrid", "fast-compute", "synthetic", 49.5, run_id="run-b",
                      utilization=0.72, **fast),
        _train_record("lenet_bn", "book", "real", 3000.0, run_id="run-b"),
        _train_record("lenet_bn_hybrid", "fast", "real", 6500.0, e2e=5000.0, run_id="run-b",
                      loader="fast", **fast),
        _train_record("lenet_bn_hybrid", "fast-compute", "synthetic", 6600.0, run_id="run-b",
                      utilization=0.1, **fast),
    ]


def test_rows_and_verdicts(run_records):
    rows = report.model_rows(run_records)
    assert [r.model for r in rows] == ["alexnet", "lenet_bn", "resnet18"]  # the book's order
    alexnet, lenet, resnet = rows
    assert alexnet.speedup == pytest.approx(17.0 / 14.5)
    assert resnet.end_to_end_fraction == pytest.approx(49.0 / 49.5)
    assert lenet.end_to_end_fraction == pytest.approx(5000 / 6600)
    v = report.verdicts(rows)
    assert set(v["speedup"]["failing"]) == {"alexnet"}
    assert set(v["end_to_end_fraction"]["failing"]) == {"lenet_bn"}
    # Only conv-heavy models are judged against the utilization target.
    assert set(v["utilization"]["values"]) == {"alexnet", "resnet18"}
    assert set(v["utilization"]["failing"]) == {"alexnet"}


def test_markdown_table_and_verdict_text(run_records):
    text = report.render_markdown(run_records, chart="benchmarks.png")
    table = [line for line in text.splitlines() if line.startswith("| alexnet (7.1)")]
    assert len(table) == 1
    assert "14.5 ±" in table[0] and "**1.17x**" in table[0] and "**55%**" in table[0]
    resnet = next(line for line in text.splitlines() if line.startswith("| resnet18 (7.6)"))
    assert "1.94x" in resnet and "**" not in resnet  # meets every target
    # The fixture's peak is 100 GFLOP/s; the book's AlexNet does 14.5 examples/s of 1 GFLOP.
    assert "not met** for 1 of 3 models (alexnet 1.17x (bound 6.90x))" in text
    assert "![examples/sec and utilization per model](benchmarks.png)" in text
    assert "AMD" in text or run_records[0]["machine"]["cpu"] in text


def test_write_report_keeps_the_hand_written_text(tmp_path, run_records):
    doc, chart = tmp_path / "docs" / "benchmarks.md", tmp_path / "docs" / "benchmarks.png"
    report.write_report(run_records, doc, chart)  # a new document gets the markers
    assert chart.read_bytes().startswith(b"\x89PNG") and chart.stat().st_size > 10_000
    text = doc.read_text()
    edited = text.replace(report.BEGIN, "## Analysis\n\nWritten by hand.\n\n" + report.BEGIN)
    edited += "\n## Method\n\nAlso by hand.\n"
    doc.write_text(edited)
    other = [dict(r, run_id="run-c", timestamp="2999-01-01T00:00:00+00:00") for r in run_records]
    assert report.write_report(run_records + other, doc, chart) == ["run-c"]  # the latest run
    text = doc.read_text()
    assert "Written by hand." in text and "Also by hand." in text
    assert text.count(report.BEGIN) == 1 and "Run `run-c`" in text and "Run `run-b`" not in text


def test_each_model_is_shown_from_its_latest_run_with_the_same_settings(run_records):
    later = "2999-01-01T00:00:00+00:00"
    again = [dict(r, run_id="run-d", timestamp=later) for r in run_records
             if r["kind"] == "peak" or r["config"]["model"].startswith("resnet18")]
    other_env = [dict(r, run_id="run-e", timestamp="2000-01-01T00:00:00+00:00",
                      environment={"OMP_NUM_THREADS": "1"}) for r in run_records[:4]]
    assert other_env[0]["environment"] != run_records[0]["environment"]
    profile = records.new_record(
        "profile", run_id="run-d", config=again[1]["config"], operators=[], steps=2,
        examples=512, wall_seconds=1.0, flops_per_example={"conv_forward": 1})
    profile.update(timestamp=later, environment={**profile["environment"],
                                                 "MXNET_EXEC_BULK_EXEC_TRAIN": "0"})
    runs, chosen = report.select_run(other_env[1:] + run_records + again + [profile])
    assert runs == ["run-b", "run-d"]  # run-e had other thread settings than the latest run
    assert profile in chosen  # its own bulk-execution switch does not make it another setup
    models = {(r["run_id"], r["config"]["model"]) for r in chosen if r["kind"] == "train"}
    assert ("run-d", "resnet18") in models and ("run-b", "resnet18") not in models
    assert ("run-b", "alexnet") in models
    assert {r["run_id"] for r in chosen if r["kind"] == "peak"} == {"run-b", "run-d"}
    text = report.render_markdown(chosen)
    assert "- Run `run-b`" in text and "- Run `run-d`" in text


def test_write_report_refuses_a_document_without_markers(tmp_path, run_records):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# My notes\n")
    with pytest.raises(ValueError, match="no single generated section"):
        report.write_report(run_records, doc, tmp_path / "chart.png")
    assert doc.read_text() == "# My notes\n"
    with pytest.raises(ValueError, match="no records of run 'nope'"):
        report.write_report(run_records, tmp_path / "new.md", tmp_path / "c.png", run_id="nope")


# ---------------------------------------------------------------------------------------------
# Configurations
# ---------------------------------------------------------------------------------------------

def test_presets_pick_the_book_code_and_the_fast_twin():
    book, fast = book_config("resnet18_hybrid"), fast_config("resnet18")
    assert (book.model, book.hybridize, book.loader, book.data) == ("resnet18", False, "book",
                                                                     "real")
    assert (fast.model, fast.hybridize, fast.static_alloc, fast.static_shape, fast.loader) == \
        ("resnet18_hybrid", True, True, True, "fast")
    scratch = fast_config("lenet_bn_scratch")
    assert scratch.hybridize == model_info(scratch.model).hybrid  # hybridized only if it can be
    resolved = fast.resolved()
    assert (resolved.batch_size, resolved.input_size, resolved.lr) == (256, 96, 0.05)


def test_chapter_models_are_the_ones_chapter_7_trains():
    assert harness.chapter_models() == ["alexnet", "vgg11_small", "nin", "googlenet",
                                        "lenet_bn_scratch", "lenet_bn", "resnet18", "densenet"]


@pytest.mark.parametrize("settings, problem", [
    (dict(model="alexnet", hybridize=True), "alexnet_hybrid"),
    (dict(model="lenet_bn_hybrid", static_alloc=True), "hybridize=True"),
    (dict(model="lenet_bn", warmup=2), "at least 3 warm-up"),
    (dict(model="lenet_bn", repeats=4), "5 timed repeats"),
    (dict(model="lenet_bn", data="imagenet"), "data must be one of"),
    (dict(model="lenet_bn", dtype="int8"), "dtype must be one of"),
    (dict(model="lenet_bn", batch_size=0), "batch_size must be a positive"),
    (dict(model="resnet18_v1_imagenet", data="real"), "3 channels"),
    (dict(model="lenet_bn", loader="fast", num_workers=2), "num_workers applies"),
    (dict(model="lenet", ), "unknown model"),
])
def test_bad_settings_are_explained(settings, problem):
    with pytest.raises(ValueError, match=problem):
        BenchConfig(**settings).resolved()


def test_unknown_settings_in_a_stored_config_are_named():
    with pytest.raises(ValueError, match="unknown benchmark setting.*colour"):
        BenchConfig.from_dict({"model": "lenet_bn", "colour": "red"})


# ---------------------------------------------------------------------------------------------
# Tiny end-to-end runs (LeNet, small batches)
# ---------------------------------------------------------------------------------------------

def test_tiny_benchmark_produces_a_plausible_record():
    config = BenchConfig("lenet_bn_hybrid", hybridize=True, static_alloc=True, static_shape=True,
                         batch_size=32, steps=2)
    r = harness.run_benchmark(config, measure_peak=False, run_id="tiny")
    records.validate_record(r)
    assert r["run_id"] == "tiny" and r["kind"] == "train"
    c = r["config"]
    assert (c["batch_size"], c["input_size"], c["steps"], c["warmup"], c["repeats"]) == \
        (32, 28, 2, 3, 5)
    step = r["examples_per_sec"]["step"]
    assert len(step["values"]) == 5 and all(v > 0 for v in step["values"])
    assert step["q1"] <= step["median"] <= step["q3"]
    # LeNet with batch norm: about 1.8 MFLOP per example for a training step (three forwards).
    assert 1e6 < r["flops_per_example"] < 3e6
    assert r["gflops"]["median"] == pytest.approx(step["median"] * r["flops_per_example"] / 1e9)
    assert r["peak"] is None and r["utilization"] is None
    assert r["memory"]["peak_rss_bytes"] >= r["memory"]["baseline_rss_bytes"] > 0
    assert r["memory"]["fresh_process"] is False


def test_peak_measurement_gives_sensible_rates():
    result = measure_peak(conv_shape=(2, 16, 8, 3), matmul_size=64, warmup=1, repeats=3)
    assert result.conv.median > 0 and result.matmul.median > 0
    assert result.gflops == max(result.conv.median, result.matmul.median)
    assert len(result.conv.values) == 3


def test_isolated_run_on_real_data_records_its_own_memory(fashion_mnist_root):
    config = book_config("lenet_bn", batch_size=64, steps=1, num_workers=1,
                         data_root=str(fashion_mnist_root))
    r = isolation.run_isolated("train", config, run_id="iso", measure_peak=False, echo=False)
    records.validate_record(r)
    assert r["memory"]["fresh_process"] is True
    assert r["config"]["data"] == "real" and r["config"]["loader"] == "book"
    e2e, step = r["examples_per_sec"]["end_to_end"], r["examples_per_sec"]["step"]
    # The end-to-end clock also runs while batches load, so it can never be ahead of the steps'.
    assert all(e <= s * 1.0001 for e, s in zip(e2e["values"], step["values"]))


def test_command_appends_a_record_and_rejects_bad_options(tmp_path, capsys):
    out = tmp_path / "bench.jsonl"
    status = cli.main(["bench", "lenet_bn", "--batch-size", "32", "--steps", "1", "--no-peak",
                       "--out", str(out)])
    assert status == 0
    assert "examples/sec on cpu" in capsys.readouterr().out
    (r,) = records.read_records(out)
    assert r["config"]["model"] == "lenet_bn" and r["config"]["batch_size"] == 32
    assert cli.main(["bench", "alexnet", "--hybridize"]) == 2
    assert "alexnet_hybrid" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["bench", "lenet_bn", "--env", "OMP_NUM_THREADS"])


def test_configurations_side_by_side_share_rounds_and_peak(fashion_mnist_root):
    fast = fast_config("lenet_bn", batch_size=32, steps=1, data_root=str(fashion_mnist_root))
    compute = fast_config("lenet_bn", label="fast-compute", data="synthetic", batch_size=32,
                          steps=1)
    real, synthetic = harness.run_benchmarks([fast, compute], run_id="pair")
    assert real["paired_with"] == ["fast-compute"] and synthetic["paired_with"] == ["fast"]
    assert real["peak"] == synthetic["peak"]  # one probe, sampled once per round
    assert len(real["peak"]["conv"]["values"]) == 5
    assert len(real["examples_per_sec"]["step"]["values"]) == 5
    assert real["utilization"] == pytest.approx(real["gflops"]["median"] / real["peak"]["gflops"])
    assert real["memory"]["configs_in_process"] == 2
    with pytest.raises(ValueError, match="same number of repeats"):
        harness.run_benchmarks([fast, dataclasses.replace(compute, repeats=6)])


def test_paired_ratios_are_medians_of_per_round_ratios():
    book = _train_record("resnet18", "book", "real", 30.0)
    fast = _train_record("resnet18_hybrid", "fast", "real", 45.0, hybridize=True)
    rounds = {"book": [10, 20, 30, 40, 50], "fast": [20, 30, 60, 45, 100]}
    for record, values in ((book, rounds["book"]), (fast, rounds["fast"])):
        record["examples_per_sec"]["end_to_end"] = stats.summarize(values).to_dict()
    row = report.ModelRow("resnet18", book=book, fast=fast)
    assert row.speedup == pytest.approx(45 / 30)  # not paired: the ratio of the medians
    book["paired_with"], fast["paired_with"] = ["fast"], ["book"]
    assert row.speedup == pytest.approx(2.0)  # per round: 2, 1.5, 2, 1.125, 2


def test_float64_training_and_a_clear_error_for_float16():
    r = harness.run_benchmark(BenchConfig("lenet_bn", dtype="float64", batch_size=16, steps=1),
                              measure_peak=False)
    assert r["config"]["dtype"] == "float64" and r["examples_per_sec"]["step"]["median"] > 0
    with pytest.raises(ValueError, match="float16 failed on cpu.*needs a GPU"):
        harness.run_benchmark(BenchConfig("lenet_bn", dtype="float16", batch_size=16, steps=1),
                              measure_peak=False)


def test_phases_of_profiler_entries():
    from gluon_modern_cnn.bench.profile import phase_of
    assert phase_of("Convolution") == "forward"
    assert phase_of("_backward_Convolution") == "backward"
    assert phase_of("add_n") == "backward"  # autograd's sum of a reused tensor's gradients
    assert phase_of("multi_sgd_update") == "update" and phase_of("sgd_update") == "update"
    assert phase_of("Convolution,BatchNorm,Activation") == "bulk"
    assert phase_of("WaitForVar") == "overhead"


def test_operator_profile_of_a_small_model():
    from gluon_modern_cnn.bench.profile import conv_efficiency
    config = fast_config("lenet_bn", data="synthetic", batch_size=32)
    r = isolation.run_isolated("profile", config, run_id="prof", echo=False)
    records.validate_record(r)
    assert r["bulk_execution"] is False  # one entry per operator, not fused segments
    names = {op["name"] for op in r["operators"]}
    assert {"Convolution", "_backward_Convolution", "BatchNorm", "_backward_BatchNorm"} <= names
    assert not any(op["phase"] == "bulk" for op in r["operators"])
    # LeNet's two convolutions: 6 * 24 * 24 outputs of 2 * 25 + 1, 16 * 8 * 8 of 2 * 150 + 1.
    assert r["flops_per_example"]["conv_forward"] == 6 * 24 * 24 * 51 + 16 * 8 * 8 * 301
    e = conv_efficiency(r)
    assert e["conv_forward_gflops"] > 0 and e["conv_backward_gflops"] > 0
    assert e["forward_share"] + e["backward_share"] + e["update_share"] + e["overhead_share"] \
        == pytest.approx(1.0)
