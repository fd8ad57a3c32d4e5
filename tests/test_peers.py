"""The peer benchmark (``gluon_modern_cnn.bench.peers``): records, the book's PyTorch cells,
rendering, and a clear message instead of a crash without PyTorch."""
import json

import pytest

from gluon_modern_cnn.bench import peers, torch_worker
from gluon_modern_cnn.bench.records import append_records, read_records, validate_record


@pytest.fixture
def book_dir(editions_dir):
    """The 0.17 edition's Markdown, whose `pytorch` cells the peer benchmark runs."""
    return editions_dir / "d2l-0.17"


def _tiny(framework, config):
    return peers.PeerTask(framework, config, "lenet_bn", batch_size=8, input_size=28, lr=0.9,
                          threads=1, warmup=3, repeats=5, steps=1)


def test_without_pytorch_the_package_is_measured_and_a_message_says_how(tmp_path, book_dir):
    messages = []
    written = tmp_path / "peers.jsonl"
    records = peers.run_peers([_tiny("mxnet", "fast"), _tiny("pytorch", "fp32")], rounds=1,
                              torch=str(tmp_path / "no-venv" / "bin" / "python"),
                              book_dir=book_dir, say=messages.append,
                              on_record=lambda r: append_records(written, [r]))
    assert "PyTorch's configurations are left out" in messages[0]
    assert "pip install torch==2.13.0" in messages[0] and "--torch-python" in messages[0]
    assert [(r["framework"], r["config"]["label"]) for r in records] == [("mxnet", "fast")]
    (record,) = read_records(written, kind="peer")
    validate_record(record)
    assert record["config"]["model"] == "lenet_bn" and record["config"]["batch_size"] == 8
    assert record["round"] == 1 and record["versions"]["mxnet"] == "1.9.1"
    assert len(record["examples_per_sec"]["values"]) == 5
    assert record["examples_per_sec"]["median"] > 0
    assert {"before", "after"} <= set(record["load_average"])
    assert record["machine"]["cpu"] and record["machine"]["cpu_cores"] >= 1


def test_a_malformed_peer_record_is_refused():
    record = {"schema": "gluon-modern-cnn/bench/1", "kind": "peer", "run_id": "x",
              "timestamp": "t", "machine": {"cpu": "c", "cpu_cores": 1, "mxnet": "1.9.1",
                                            "mxnet_features": []},
              "environment": {}, "package": "0", "framework": "tensorflow", "round": 1,
              "config": {"model": "m", "label": "fp32", "batch_size": 1, "input_size": 28,
                         "threads": 1},
              "examples_per_sec": {"median": 1.0, "q1": 1.0, "q3": 1.0, "iqr": 0.0,
                                   "values": [1.0]},
              "versions": {}, "load_average": {"before": 0.1, "after": 0.2}}
    with pytest.raises(ValueError, match="framework must be mxnet or pytorch"):
        validate_record(record)
    record["framework"] = "pytorch"
    validate_record(record)
    del record["config"]["threads"]
    with pytest.raises(ValueError, match="threads"):
        validate_record(record)


@pytest.mark.parametrize("model", sorted(torch_worker.BOOK_NETS))
def test_the_books_pytorch_cells_build_each_model(model, book_dir):
    cells = torch_worker.net_cells(str(book_dir), model)
    assert cells[0].startswith("#@tab pytorch") and "import torch" in cells[0]
    assert cells[-1].lstrip().startswith("#@tab") and "net = " in cells[-1]
    assert not any("train_ch6" in c or "load_data_fashion_mnist" in c for c in cells)
    text = "\n".join(cells)
    expected = {"lenet_bn_scratch": "BatchNorm(6, num_dims=4)", "lenet_bn": "nn.BatchNorm2d(6)",
                "vgg11_small": "small_conv_arch", "resnet18": "class Residual",
                "densenet": "class DenseBlock", "googlenet": "class Inception",
                "nin": "def nin_block", "alexnet": "nn.Linear(6400, 4096)"}[model]
    assert expected in text
    if model == "lenet_bn":  # the concise net is the section's second one
        assert "nn.BatchNorm2d(6)" in cells[-1]


def test_unknown_model_is_refused(book_dir):
    with pytest.raises(ValueError, match="no PyTorch cells known for 'lenet'"):
        torch_worker.net_cells(str(book_dir), "lenet")


def _record(framework, label, model, rate, batch, threads=2, size=28, run_id="r1"):
    return {"run_id": run_id, "framework": framework, "round": 1,
            "timestamp": "2026-01-01T00:00:00+00:00",
            "machine": {"cpu": "Test CPU", "cpu_cores": 2, "mxnet": "1.9.1", "python": "3.11",
                        "cpu_flags": ["avx2"]},
            "config": {"model": model, "label": label, "batch_size": batch, "input_size": size,
                       "threads": threads},
            "examples_per_sec": {"median": rate}, "versions": {"torch": "2.13.0+cpu"}
            if framework == "pytorch" else {}, "load_average": {"before": 1.0, "after": 2.0}}


def test_render_shows_the_issue_table_and_scaling():
    records = [_record("mxnet", "book", "lenet_bn", 4000, 256),
               _record("mxnet", "fast", "lenet_bn", 8000, 256),
               _record("mxnet", "fast", "lenet_bn", 9000, 256),   # a better round
               _record("pytorch", "fp32", "lenet_bn", 10000, 256),
               _record("pytorch", "fp32-cl", "lenet_bn", 6000, 256),
               _record("mxnet", "fast", "lenet_bn", 3000, 32),
               _record("pytorch", "fp32", "lenet_bn", 2000, 32)]
    text = peers.render_peers(records)
    assert "Test CPU, 2 cores" in text and "PyTorch 2.13.0+cpu" in text
    assert "load average 1.0 to 2.0" in text
    row = next(line for line in text.splitlines() if line.startswith("| lenet_bn (256, 28)"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:7] == ["4,000", "9,000", "-", "10,000", "6,000", "-"]
    assert cells[7] == "**0.90**" and cells[8] == "**0.90**"
    assert "| lenet_bn | 32 | 2 | 3,000 | 2,000 | - | 1.50 |" in text


def test_report_keeps_the_rest_of_the_document(tmp_path):
    doc = tmp_path / "b.md"
    doc.write_text(f"intro\n{peers.BEGIN}\nstale table\n{peers.END}\nafter\n")
    records = [_record("mxnet", "fast", "lenet_bn", 8000, 256),
               _record("pytorch", "fp32", "lenet_bn", 10000, 256)]
    peers.write_peers_report(records, doc, tmp_path / "p.png")
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("after\n") and "stale table" not in text
    assert "(p.png)" in text and (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    bad = tmp_path / "c.md"
    bad.write_text("no markers\n")
    with pytest.raises(ValueError, match="no single peer section"):
        peers.write_peers_report(records, bad, tmp_path / "q.png")
    assert bad.read_text() == "no markers\n"


TORCH = peers.torch_python()
HAS_TORCH = peers.find_torch(TORCH)[0] is not None


@pytest.mark.skipif(not HAS_TORCH, reason=f"PyTorch's environment is not at {TORCH} (create it "
                                          f"with `{peers.TORCH_INSTALL}`)")
def test_pytorch_measures_the_books_cells(tmp_path, book_dir):
    (record,) = peers.run_peers([_tiny("pytorch", "fp32-cl")], rounds=1, book_dir=book_dir,
                                say=lambda m: None)
    validate_record(record)
    assert record["versions"]["torch"].startswith("2.13.0")
    assert record["versions"]["torch_threads"] == 1
    assert record["examples_per_sec"]["median"] > 0
    json.dumps(record)
