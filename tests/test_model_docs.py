"""The models page: generated from the code, committed up to date, and its numbers are the ones a
real forward pass gives."""
import pytest
from mxnet import autograd, np

import gluon_modern_cnn as gmc
from gluon_modern_cnn.tools import flops, model_docs, summary
from gluon_modern_cnn.training.checkpoint import network_state
from gluon_modern_cnn.models import GLUONCV_DIFFERENCES


@pytest.fixture(scope="module")
def page():
    return model_docs.render_page()


def test_committed_page_is_the_generated_one(page):
    committed = model_docs.DEFAULT_PATH.read_text(encoding="utf-8")
    assert committed == page, ("docs/models.md is out of date: regenerate it with "
                               "`python -m gluon_modern_cnn.model_docs`")


def test_page_describes_every_model_and_every_gluoncv_difference(page):
    for name in gmc.list_models():
        assert f"\n### {name}\n" in page and f"| [`{name}`](#{name}) |" in page
    for difference in GLUONCV_DIFFERENCES:
        assert f"| `{difference.models}` | `{difference.option}` |" in page
    assert ("| [`resnet50_v1_imagenet`](#resnet50_v1_imagenet) | He et al. 2016a, Table 1 | "
            "3 x 224 x 224 | 1000 | 1 | 25,557,032 | 7.77 G |") in page


@pytest.mark.parametrize("name", ["resnet18_hybrid", "resnet18_v2", "googlenet_bn",
                                  "densenet_bc_100_k12", "lenet_bn_scratch"])
def test_symbolic_summary_agrees_with_a_forward_pass(name):
    info = gmc.model_info(name)
    static = model_docs.summarize_model(name)
    net = gmc.get_model(name)
    net.initialize()
    X = np.zeros(info.input_shape)
    with autograd.predict_mode():
        shapes = [shape for _, shape in summary.layer_shapes(net, X)]
    assert [shape for _, shape in static.stages] == shapes
    assert static.trainable_parameters == flops.count_parameters(net)
    # Running statistics, whether Parameters (nn.BatchNorm, the twins) or the scratch
    # BatchNorm's arrays: everything the package saves that is not trained.
    saved = sum(int(a.size) for a in network_state(net).values())
    assert static.fixed_parameters == saved - flops.count_parameters(net)
    assert static.flops == flops.count_flops(net, info.input_shape)
    assert [(c.name, c.output_shape, c.parameters, c.flops) for c in static.layers] == \
        [(c.name, c.output_shape, c.parameters, c.flops)
         for c in flops.layer_costs(net, info.input_shape) if c.kind != "add"]


def test_infer_shapes_allocates_nothing_and_rejects_small_inputs():
    net = gmc.get_model("vgg19_imagenet")
    trace = flops.infer_shapes(net, (1, 3, 224, 224))
    assert trace.output_shape(net) == (1, 1000)
    assert net[5].weight.shape == (4096, 512 * 7 * 7)
    assert all(p._data is None for p in net.collect_params().values())
    with pytest.raises(ValueError, match=r"input of shape \(1, 3, 16, 16\) does not fit"):
        flops.infer_shapes(gmc.get_model("vgg16"), (1, 3, 16, 16))


@pytest.fixture
def fake_page(monkeypatch):
    """A small stand-in for the rendered page, so the file handling is tested quickly."""
    text = model_docs.MARKER + "\n# Models\n"
    monkeypatch.setattr(model_docs, "render_page", lambda: text)
    return text


def test_command_writes_then_checks_the_page(fake_page, tmp_path, capsys):
    path = tmp_path / "models.md"
    assert model_docs.main(["--output", str(path), "--check"]) == 1
    assert "out of date; regenerate it" in capsys.readouterr().err
    assert not path.exists()
    assert model_docs.main(["--output", str(path)]) == 0
    assert path.read_text(encoding="utf-8") == fake_page
    assert model_docs.main(["--output", str(path), "--check"]) == 0
    path.write_text(fake_page + "edited by hand\n", encoding="utf-8")
    assert model_docs.main(["--output", str(path), "--check"]) == 1
    assert model_docs.main(["--output", str(path)]) == 0  # a generated page is regenerated
    assert path.read_text(encoding="utf-8") == fake_page


def test_a_page_not_generated_is_never_overwritten(fake_page, tmp_path, capsys):
    path = tmp_path / "models.md"
    path.write_text("# My notes\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        model_docs.main(["--output", str(path)])
    assert exit_info.value.code == 2
    assert "is not a generated models page" in capsys.readouterr().err
    assert path.read_text(encoding="utf-8") == "# My notes\n"
    with pytest.raises(SystemExit):
        model_docs.main(["--output", str(tmp_path / "missing" / "models.md")])
    assert "does not exist; pass the page's path" in capsys.readouterr().err
