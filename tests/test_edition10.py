"""The 1.0 edition's API and chapter 8 networks: the book's shape traces, a real training run on the
package's loop, the recorded hyperparameters and the errors a reader can meet."""
import contextlib
import io
import math

import mxnet as mx
import numpy as onp
import pytest
from mxnet import np
from mxnet.gluon import nn

import gluon_modern_cnn as d2l
from gluon_modern_cnn import edition10
from gluon_modern_cnn.training.checkpoint import CheckpointError, network_state
from gluon_modern_cnn.models.edition10 import EDITION10_MODELS
from gluon_modern_cnn.registry import model_info
from gluon_modern_cnn.training import Callback

# The constructor call of each section's `layer_summary` cell, and its input shape.
CELLS = {
    "AlexNet": (lambda: d2l.AlexNet(), (1, 1, 224, 224)),
    "VGG": (lambda: d2l.VGG(arch=((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))),
            (1, 1, 224, 224)),
    "NiN": (lambda: d2l.NiN(), (1, 1, 224, 224)),
    "GoogleNet": (lambda: d2l.GoogleNet(), (1, 1, 96, 96)),
    "BNLeNetScratch": (lambda: d2l.BNLeNetScratch(), (1, 1, 28, 28)),
    "BNLeNet": (lambda: d2l.BNLeNet(), (1, 1, 28, 28)),
    "ResNet18": (lambda: d2l.ResNet18(), (1, 1, 96, 96)),
    "DenseNet": (lambda: d2l.DenseNet(), (1, 1, 96, 96)),
    "RegNetX32": (lambda: d2l.RegNetX32(), (1, 1, 96, 96)),
    "RegNetX32Intended": (lambda: d2l.RegNetX32Intended(), (1, 1, 96, 96)),
}

SUMMARIES = {
    'AlexNet': [
        'Conv2D output shape:\t (1, 96, 54, 54)',
        'MaxPool2D output shape:\t (1, 96, 26, 26)',
        'Conv2D output shape:\t (1, 256, 26, 26)',
        'MaxPool2D output shape:\t (1, 256, 12, 12)',
        'Conv2D output shape:\t (1, 384, 12, 12)',
        'Conv2D output shape:\t (1, 384, 12, 12)',
        'Conv2D output shape:\t (1, 256, 12, 12)',
        'MaxPool2D output shape:\t (1, 256, 5, 5)',
        'Dense output shape:\t (1, 4096)',
        'Dropout output shape:\t (1, 4096)',
        'Dense output shape:\t (1, 4096)',
        'Dropout output shape:\t (1, 4096)',
        'Dense output shape:\t (1, 10)',
    ],
    'VGG': [
        'Sequential output shape:\t (1, 64, 112, 112)',
        'Sequential output shape:\t (1, 128, 56, 56)',
        'Sequential output shape:\t (1, 256, 28, 28)',
        'Sequential output shape:\t (1, 512, 14, 14)',
        'Sequential output shape:\t (1, 512, 7, 7)',
        'Dense output shape:\t (1, 4096)',
        'Dropout output shape:\t (1, 4096)',
        'Dense output shape:\t (1, 4096)',
        'Dropout output shape:\t (1, 4096)',
        'Dense output shape:\t (1, 10)',
    ],
    'NiN': [
        'Sequential output shape:\t (1, 96, 54, 54)',
        'MaxPool2D output shape:\t (1, 96, 26, 26)',
        'Sequential output shape:\t (1, 256, 26, 26)',
        'MaxPool2D output shape:\t (1, 256, 12, 12)',
        'Sequential output shape:\t (1, 384, 12, 12)',
        'MaxPool2D output shape:\t (1, 384, 5, 5)',
        'Dropout output shape:\t (1, 384, 5, 5)',
        'Sequential output shape:\t (1, 10, 5, 5)',
        'GlobalAvgPool2D output shape:\t (1, 10, 1, 1)',
        'Flatten output shape:\t (1, 10)',
    ],
    'GoogleNet': [
        'Sequential output shape:\t (1, 64, 24, 24)',
        'Sequential output shape:\t (1, 192, 12, 12)',
        'Sequential output shape:\t (1, 480, 6, 6)',
        'Sequential output shape:\t (1, 832, 3, 3)',
        'Sequential output shape:\t (1, 1024, 1, 1)',
        'Dense output shape:\t (1, 10)',
    ],
    'BNLeNetScratch': [
        'Conv2D output shape:\t (1, 6, 24, 24)',
        'BatchNorm output shape:\t (1, 6, 24, 24)',
        'Activation output shape:\t (1, 6, 24, 24)',
        'AvgPool2D output shape:\t (1, 6, 12, 12)',
        'Conv2D output shape:\t (1, 16, 8, 8)',
        'BatchNorm output shape:\t (1, 16, 8, 8)',
        'Activation output shape:\t (1, 16, 8, 8)',
        'AvgPool2D output shape:\t (1, 16, 4, 4)',
        'Dense output shape:\t (1, 120)',
        'BatchNorm output shape:\t (1, 120)',
        'Activation output shape:\t (1, 120)',
        'Dense output shape:\t (1, 84)',
        'BatchNorm output shape:\t (1, 84)',
        'Activation output shape:\t (1, 84)',
        'Dense output shape:\t (1, 10)',
    ],
    'BNLeNet': [
        'Conv2D output shape:\t (1, 6, 24, 24)',
        'BatchNorm output shape:\t (1, 6, 24, 24)',
        'Activation output shape:\t (1, 6, 24, 24)',
        'AvgPool2D output shape:\t (1, 6, 12, 12)',
        'Conv2D output shape:\t (1, 16, 8, 8)',
        'BatchNorm output shape:\t (1, 16, 8, 8)',
        'Activation output shape:\t (1, 16, 8, 8)',
        'AvgPool2D output shape:\t (1, 16, 4, 4)',
        'Dense output shape:\t (1, 120)',
        'BatchNorm output shape:\t (1, 120)',
        'Activation output shape:\t (1, 120)',
        'Dense output shape:\t (1, 84)',
        'BatchNorm output shape:\t (1, 84)',
        'Activation output shape:\t (1, 84)',
        'Dense output shape:\t (1, 10)',
    ],
    'ResNet18': [
        'Sequential output shape:\t (1, 64, 24, 24)',
        'Sequential output shape:\t (1, 64, 24, 24)',
        'Sequential output shape:\t (1, 128, 12, 12)',
        'Sequential output shape:\t (1, 256, 6, 6)',
        'Sequential output shape:\t (1, 512, 3, 3)',
        'GlobalAvgPool2D output shape:\t (1, 512, 1, 1)',
        'Dense output shape:\t (1, 10)',
    ],
    'DenseNet': [
        'Sequential output shape:\t (1, 64, 24, 24)',
        'DenseBlock output shape:\t (1, 192, 24, 24)',
        'Sequential output shape:\t (1, 96, 12, 12)',
        'DenseBlock output shape:\t (1, 224, 12, 12)',
        'Sequential output shape:\t (1, 112, 6, 6)',
        'DenseBlock output shape:\t (1, 240, 6, 6)',
        'Sequential output shape:\t (1, 120, 3, 3)',
        'DenseBlock output shape:\t (1, 248, 3, 3)',
        'BatchNorm output shape:\t (1, 248, 3, 3)',
        'Activation output shape:\t (1, 248, 3, 3)',
        'GlobalAvgPool2D output shape:\t (1, 248, 1, 1)',
        'Dense output shape:\t (1, 10)',
    ],
    'RegNetX32': [
        'Sequential output shape:\t (1, 32, 48, 48)',
        'Sequential output shape:\t (1, 32, 24, 24)',
        'Sequential output shape:\t (1, 80, 12, 12)',
        'GlobalAvgPool2D output shape:\t (1, 80, 1, 1)',
        'Dense output shape:\t (1, 10)',
    ],
    'RegNetX32Intended': [
        'Sequential output shape:\t (1, 32, 48, 48)',
        'Sequential output shape:\t (1, 32, 24, 24)',
        'Sequential output shape:\t (1, 80, 12, 12)',
        'GlobalAvgPool2D output shape:\t (1, 80, 1, 1)',
        'Dense output shape:\t (1, 10)',
    ],
}


@pytest.mark.parametrize("name", sorted(CELLS))
def test_layer_summary_prints_the_books_lines(name):
    build, shape = CELLS[name]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        build().layer_summary(shape)
    assert out.getvalue().splitlines() == SUMMARIES[name]


def _trainable(net):
    return sum(p.data().size for p in net.collect_params().values() if p.grad_req != "null")


def test_regnetx32_as_the_mxnet_cell_builds_it_and_as_intended():
    cell, intended = d2l.get_model("d2l10_regnetx32"), d2l.get_model("d2l10_regnetx32_intended")
    for net in (cell, intended):
        net(np.zeros((1, 1, 96, 96)))
    assert (_trainable(cell), _trainable(intended)) == (6291594, 179290)
    # The cell's later blocks: bottleneck 16x wider, grouped by the channel count, and a projection.
    later = cell.net[1][1]
    assert later.conv1._channels == 32 * 16 and later.conv2._kwargs["num_group"] == 16
    assert later.conv4 is not None and intended.net[1][1].conv4 is None


def test_every_1_0_network_is_registered_under_the_d2l10_prefix():
    assert d2l.list_models("d2l10_*") == sorted(EDITION10_MODELS)
    for name in EDITION10_MODELS:
        net = d2l.get_model(name, num_classes=3)
        assert isinstance(net, d2l.Classifier) and net.num_classes == 3


def test_the_1_0_scratch_batch_norm_starts_at_variance_one():
    layer = d2l.BNLeNetScratch().net[1]
    assert type(layer).__name__ == "BatchNorm"
    assert float(layer.moving_var.min()) == float(layer.moving_var.max()) == 1.0
    assert float(abs(layer.moving_mean).max()) == 0.0


def test_trainer_trains_a_1_0_model_on_real_data(fashion_mnist_root, tmp_path, capsys):
    trainer = d2l.Trainer(max_epochs=1, num_gpus=1)
    data = d2l.FashionMNIST(batch_size=128, root=fashion_mnist_root)
    model = d2l.BNLeNet(lr=0.1)
    figure = tmp_path / "board.png"
    assert trainer.fit(model, data, figure=figure) is None     # like the book: nothing returned
    assert capsys.readouterr().out == ""                      # the book's fit prints nothing
    epoch = trainer.history.final
    assert epoch.examples == 60000 and epoch.test_acc > 0.5     # chance is 0.1
    assert math.isfinite(epoch.train_loss) and epoch.train_loss < 1.5
    # The board drew the book's lines: training loss twice an epoch, validation once.
    assert {k: len(v) for k, v in model.board.data.items()} == {
        "train_loss": 2, "val_loss": 1, "val_acc": 1}
    assert figure.read_bytes().startswith(b"\x89PNG")
    assert trainer.train_batch_idx == 469 and trainer.val_batch_idx == 79


def test_save_hyperparameters_records_exactly_the_constructors_arguments():
    class Model(d2l.HyperParameters):
        def __init__(self, a, b=2, *rest, c=3, **extra):
            local = "not an argument"  # noqa: F841
            self.save_hyperparameters(ignore=["c"])

    model = Model(1, 5, 6, 7, c=4, d=8)
    assert model.hparams == {"a": 1, "b": 5, "rest": (6, 7), "d": 8}
    assert (model.a, model.b, model.d) == (1, 5, 8) and not hasattr(model, "c")
    assert d2l.VGG(arch=((1, 8),), lr=0.5).hparams == {"arch": ((1, 8),), "lr": 0.5,
                                                       "num_classes": 10}
    assert d2l.FashionMNIST(batch_size=32, resize=(96, 96)).hparams == {
        "batch_size": 32, "resize": (96, 96), "root": None}


def test_trainer_given_a_plain_gluon_network_says_what_it_needs(fashion_mnist_root):
    net = nn.Sequential()
    net.add(nn.Dense(10))
    with pytest.raises(TypeError, match=r"Trainer.fit\(model, data\) needs a d2l.Module .* got "
                                        r"mxnet.gluon.nn.basic_layers.Sequential"):
        d2l.Trainer(max_epochs=1).fit(net, d2l.FashionMNIST(root=fashion_mnist_root))
    with pytest.raises(TypeError, match="needs a d2l.DataModule"):
        d2l.Trainer(max_epochs=1).fit(d2l.BNLeNet(), [(np.zeros((1, 1, 28, 28)), np.zeros(1))])


@pytest.mark.parametrize("resize", [(96,), (96, 96, 1), (0, 96), "96", 96.0])
def test_a_malformed_resize_is_a_clear_error(resize):
    with pytest.raises(ValueError, match=r"resize must be a positive int or a \(height, width\) "
                                         r"pair of positive ints"):
        d2l.FashionMNIST(batch_size=64, resize=resize)


@pytest.mark.parametrize("kwargs, problem", [
    ({"max_epochs": 0}, "max_epochs must be an integer >= 1"),
    ({"max_epochs": 1, "num_gpus": -1}, "num_gpus must be an integer >= 0"),
    ({"max_epochs": 1, "gradient_clip_val": -1}, "gradient_clip_val must be a number >= 0")])
def test_bad_trainer_settings_are_clear_errors(kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        d2l.Trainer(**kwargs)


def test_a_non_square_resize_uses_the_books_pipeline(fashion_mnist_root):
    X, y = next(iter(d2l.FashionMNIST(batch_size=4, resize=(32, 48),
                                      root=fashion_mnist_root).val_dataloader()))
    assert X.shape == (4, 1, 32, 48) and y.shape == (4,)


def test_the_small_aliases_are_the_1_0_librarys():
    X = d2l.randn(2, 3)
    assert X.shape == (2, 3) and d2l.reshape(X, (3, 2)).shape == (3, 2)
    assert d2l.numpy(d2l.ones(2)).tolist() == [1.0, 1.0]
    assert d2l.normal(0, 1, (4,)).shape == (4,)
    assert set(edition10.ALIASES) <= set(dir(d2l))


def test_add_to_class_adds_a_method():
    class A:
        pass

    @d2l.add_to_class(A)
    def twice(self, x):
        return 2 * x

    assert A().twice(3) == 6


def test_the_model_side_is_one_set_of_classes_and_every_module_gets_a_board():
    # Defined below the training layer (models/), the same objects under every import path.
    from gluon_modern_cnn.models import edition10 as networks, edition10_base
    for name in ("HyperParameters", "add_to_class", "Module", "Classifier"):
        assert getattr(d2l, name) is getattr(edition10, name) is getattr(edition10_base, name)
    assert networks.Classifier is d2l.Classifier

    class Net(d2l.Classifier):
        def __init__(self, lr=0.1):
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Dense(10)

    net = Net()
    assert isinstance(net, d2l.Module) and isinstance(d2l.BNLeNet(), d2l.Classifier)
    assert isinstance(net.board, d2l.ProgressBoard)     # as the book's Module.__init__ makes it
    assert net.hparams == {"lr": 0.1}
    with pytest.raises(RuntimeError, match=r"plot\(\) needs a trainer: train the model with "
                                           r"d2l.Trainer\(...\).fit\(model, data\)"):
        net.plot("loss", 1.0, train=True)


def test_a_board_restores_the_points_it_saved():
    board = d2l.ProgressBoard(display=False)
    for i in range(4):
        board.draw(i, 2 * i, "train_loss", every_n=2)
    board.draw(1, 0.5, "val_acc")
    saved = board.points()
    assert saved == {"train_loss": [[0.5, 1.0], [2.5, 5.0]], "val_acc": [[1.0, 0.5]]}
    resumed = d2l.ProgressBoard(display=False)
    resumed.restore(saved)
    assert resumed.points() == saved and resumed.data["train_loss"][1].y == 5.0
    for i in (4, 5):  # the next points average on from the restored ones
        resumed.draw(i, 2 * i, "train_loss", every_n=2)
    assert resumed.points()["train_loss"] == [[0.5, 1.0], [2.5, 5.0], [4.5, 9.0]]


def test_gradient_clipping_bounds_the_global_norm():
    model = d2l.BNLeNet()
    trainer = d2l.Trainer(max_epochs=1, gradient_clip_val=0.5)
    X, y = d2l.randn(8, 1, 28, 28), np.arange(8) % 10
    with mx.autograd.record():
        l = model.loss(model(X), y) * 1000   # gradients far above the bound
    l.backward()
    trainer.clip_gradients(0.5, model)
    grads = [p.grad() for p in model.collect_params().values() if p.grad_req != "null"]
    assert math.sqrt(sum(float((g ** 2).sum()) for g in grads)) == pytest.approx(0.5, rel=1e-4)


def test_reproducing_a_1_0_section_hybridized_names_the_networks_without_a_twin(tmp_path):
    from gluon_modern_cnn.training.reproduce import reproduce
    with pytest.raises(ValueError, match=r"d2l10_resnet18 \(the 1.0 edition's networks\) have "
                                         r"none: leave out --hybridize"):
        reproduce("8.6", hybridize=True, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()   # refused before anything was written


class _InMemoryData(d2l.DataModule):
    """64 fixed random 28x28 images in 10 classes, in a fixed order: runs that must match do."""

    def __init__(self, batch_size=16):
        super().__init__()
        self.save_hyperparameters()
        generator = onp.random.default_rng(0)
        self.X = generator.random((64, 1, 28, 28), dtype=onp.float32)
        self.y = (onp.arange(64) % 10).astype(onp.int32)

    def get_dataloader(self, train):
        dataset = mx.gluon.data.ArrayDataset(np.array(self.X), np.array(self.y))
        return mx.gluon.data.DataLoader(dataset, self.batch_size, shuffle=False)


def _trained(max_epochs, checkpoint, model=None, seed=0):
    mx.random.seed(seed)
    model = model or d2l.BNLeNet(lr=0.1)
    trainer = d2l.Trainer(max_epochs=max_epochs)
    trainer.fit(model, _InMemoryData(), checkpoint=checkpoint)
    return model, trainer


def test_a_1_0_run_with_a_checkpoint_continues_where_it_stopped(tmp_path):
    straight, straight_trainer = _trained(2, tmp_path / "straight.ckpt")
    _trained(1, tmp_path / "stopped.ckpt")
    # Another seed: only parameters loaded from the checkpoint can end where the straight run does.
    resumed, resumed_trainer = _trained(2, tmp_path / "stopped.ckpt", seed=5)
    assert [e.epoch for e in resumed_trainer.history.epochs] == [1, 2]
    assert resumed_trainer.val_batch_idx == 4        # this fit validated one epoch, not two
    for a, b in zip(straight_trainer.history.epochs, resumed_trainer.history.epochs):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-5)
    expected = {k: a.asnumpy() for k, a in network_state(straight).items()}
    for name, array in network_state(resumed).items():
        assert abs(array.asnumpy() - expected[name]).max() < 1e-5, name
    # The board kept the first epoch's points: a resumed figure shows the whole run.
    assert {k: len(v) for k, v in resumed.board.data.items()} == {
        k: len(v) for k, v in straight.board.data.items()}
    assert resumed_trainer.train_batch_idx == straight_trainer.train_batch_idx == 8


def test_a_1_0_checkpoint_of_another_model_is_refused(tmp_path):
    _trained(1, tmp_path / "lenet.ckpt")
    with pytest.raises(CheckpointError, match=r"holds a run of .*BNLeNet, not of .*BNLeNetScratch; pass another"):
        _trained(2, tmp_path / "lenet.ckpt", model=d2l.BNLeNetScratch(lr=0.1))


def test_a_1_0_classifier_with_too_few_outputs_is_refused_before_training():
    class FiveOutputs(d2l.Classifier):
        def __init__(self, lr=0.1):
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Dense(5)
            self.net.initialize()

    with pytest.raises(ValueError, match=r"outputs 5 value\(s\) per example, but the labels go "
                                         r"up to 9: it needs at least 10 outputs"):
        d2l.Trainer(max_epochs=1).fit(FiveOutputs(), _InMemoryData())


def test_training_a_1_0_network_keeps_the_initialization_its_cell_gives_it():
    """The 1.0 batch-norm LeNets initialize with MXNet's default Uniform(0.07) (their cells call
    self.initialize()); reproduce 8.5 must not swap in train_ch6's Xavier."""
    from gluon_modern_cnn.training.experiment import resolve_settings, train_model
    assert model_info("d2l10_lenet_bn").initializes_itself
    assert not model_info("lenet_bn").initializes_itself
    data = _InMemoryData()
    loaders = (data.train_dataloader(), data.val_dataloader())
    nets = []

    class Keep(Callback):
        def on_train_begin(self, state):
            nets.append(state.net)

    for name in ("d2l10_lenet_bn", "lenet_bn"):
        settings = resolve_settings(name, num_epochs=1, lr=1e-12, seed=0)  # lr ~ 0: as initialized
        train_model(settings, device=mx.cpu(), data=loaders, callbacks=[Keep()], quiet=True,
                    progress=False)
    largest = [max(float(abs(p.data()).max()) for k, p in net.collect_params().items()
                   if k.endswith("weight")) for net in nets]
    assert largest[0] <= 0.07 < largest[1], largest   # Uniform(0.07) against Xavier's ~0.18
