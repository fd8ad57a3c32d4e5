"""What the book printed and the hyperparameters it used, section by section, as plain data.

This is the package's one source of truth for the book: the command line's defaults, the
reproduction runner, the cross-check and the tests all read it. Every line below is copied from the
seed text it names (``../shared/seeds/``) and a test checks that it still occurs there.

Sections 7.1 to 7.7 come from the MXNet/Gluon edition of *Dive into Deep Learning*
(``001_072618f7de167b13.txt``); sections 5.11 to 5.13 from the older gluonbook edition
(``000_8f32c3f6393782dd.txt``), which used the legacy ``nd`` API and ``train_ch5``; sections 8.1 to
8.8 from the 1.0 edition's source (``../shared/editions/d2l-1.0/``), which prints nothing the
source keeps, so only its training settings are stored (a test checks them against its cells).
A section's edition follows from its number: :func:`edition`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

__all__ = ["Hyperparameters", "PrintedOutput", "TrainingRun", "Section", "SECTIONS", "edition",
           "EDITIONS",
           "section", "training_run", "parse_result", "RESULT_PATTERN", "SPEED_PATTERN",
           "EPOCH_PATTERN", "SHAPE_LINE_PATTERN", "normalize_whitespace"]

MXNET_EDITION = "001_072618f7de167b13.txt"
GLUONBOOK_EDITION = "000_8f32c3f6393782dd.txt"
#: The 1.0 edition's Markdown source, relative to the seeds folder.
EDITION_1_0 = "../editions/d2l-1.0/"

#: The editions by the chapter's section numbers in each.
EDITIONS = {"5": "gluonbook", "7": "0.17", "8": "1.0"}


def edition(section_key: str) -> str:
    """The book edition a section number belongs to: ``gluonbook`` (5.11-5.13), ``0.17``
    (7.1-7.7) or ``1.0`` (8.1-8.8)."""
    return EDITIONS[section_key.split(".")[0]]

#: ``train_ch6``'s two result lines, e.g. ``loss 0.243, train acc 0.909, test acc 0.874``.
RESULT_PATTERN = re.compile(
    r"^loss (?P<loss>\d+\.\d{3}), train acc (?P<train_acc>\d\.\d{3}), "
    r"test acc (?P<test_acc>\d\.\d{3})$")
#: ... and ``16276.8 examples/sec on gpu(0)``.
SPEED_PATTERN = re.compile(r"^(?P<examples_per_sec>\d+\.\d) examples/sec on (?P<device>\S+)$")
#: ``train_ch5``'s per-epoch line (older edition).
EPOCH_PATTERN = re.compile(
    r"^epoch (?P<epoch>\d+), loss (?P<loss>\d+\.\d{4}), train acc (?P<train_acc>\d\.\d{3}), "
    r"test acc (?P<test_acc>\d\.\d{3}), time (?P<seconds>\d+\.\d) sec$")
#: A shape-trace line: ``conv0 output shape:\t (1, 96, 54, 54)``.
SHAPE_LINE_PATTERN = re.compile(r"^(?P<name>\S+) output shape:\s*(?P<shape>\(.*\))$")


def normalize_whitespace(line: str) -> str:
    """Collapse runs of whitespace (the book prints a tab after ``output shape:``)."""
    return " ".join(line.split())


@dataclass(frozen=True)
class Hyperparameters:
    """The settings of a training cell: ``lr, num_epochs, batch_size`` and the ``resize`` argument."""

    lr: float
    num_epochs: int
    batch_size: int
    resize: Optional[int] = None


@dataclass(frozen=True)
class PrintedOutput:
    """The lines one deterministic cell printed (a shape trace or a block's output shape)."""

    cell: str
    lines: Tuple[str, ...]
    #: False where the layer numbers depend on notebook cells the seed does not show: then only the
    #: shapes are compared.
    names_match: bool = True


@dataclass(frozen=True)
class TrainingRun:
    """A training cell: the registered model it trains, its hyperparameters and what it printed."""

    model: str
    hyperparameters: Hyperparameters
    lines: Tuple[str, ...]
    loop: str = "train_ch6"
    #: What the section printed about the learned parameters afterwards, if anything.
    parameter_lines: Tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    seed: str
    outputs: Tuple[PrintedOutput, ...] = ()
    trainings: Tuple[TrainingRun, ...] = ()


def _trace(*lines: str) -> Tuple[str, ...]:
    return tuple(lines)


SECTIONS: Dict[str, Section] = {s.key: s for s in (
    Section(
        key="7.1", title="Deep Convolutional Neural Networks (AlexNet)", seed=MXNET_EDITION,
        outputs=(PrintedOutput("AlexNet's layers on a 1x1x224x224 input", _trace(
            "conv0 output shape: (1, 96, 54, 54)",
            "pool0 output shape: (1, 96, 26, 26)",
            "conv1 output shape: (1, 256, 26, 26)",
            "pool1 output shape: (1, 256, 12, 12)",
            "conv2 output shape: (1, 384, 12, 12)",
            "conv3 output shape: (1, 384, 12, 12)",
            "conv4 output shape: (1, 256, 12, 12)",
            "pool2 output shape: (1, 256, 5, 5)",
            "dense0 output shape: (1, 4096)",
            "dropout0 output shape: (1, 4096)",
            "dense1 output shape: (1, 4096)",
            "dropout1 output shape: (1, 4096)",
            "dense2 output shape: (1, 10)")),),
        trainings=(TrainingRun("alexnet", Hyperparameters(0.01, 10, 128, 224), (
            "loss 0.333, train acc 0.879, test acc 0.892",
            "3985.4 examples/sec on gpu(0)")),)),
    Section(
        key="7.2", title="Networks Using Blocks (VGG)", seed=MXNET_EDITION,
        outputs=(PrintedOutput("VGG-11's blocks on a 1x1x224x224 input", _trace(
            "sequential1 output shape: (1, 64, 112, 112)",
            "sequential2 output shape: (1, 128, 56, 56)",
            "sequential3 output shape: (1, 256, 28, 28)",
            "sequential4 output shape: (1, 512, 14, 14)",
            "sequential5 output shape: (1, 512, 7, 7)",
            "dense0 output shape: (1, 4096)",
            "dropout0 output shape: (1, 4096)",
            "dense1 output shape: (1, 4096)",
            "dropout1 output shape: (1, 4096)",
            "dense2 output shape: (1, 10)")),),
        trainings=(TrainingRun("vgg11_small", Hyperparameters(0.05, 10, 128, 224), (
            "loss 0.174, train acc 0.936, test acc 0.926",
            "1780.0 examples/sec on gpu(0)")),)),
    Section(
        key="7.3", title="Network in Network (NiN)", seed=MXNET_EDITION,
        outputs=(PrintedOutput("NiN's blocks on a 1x1x224x224 input", _trace(
            "sequential1 output shape: (1, 96, 54, 54)",
            "pool0 output shape: (1, 96, 26, 26)",
            "sequential2 output shape: (1, 256, 26, 26)",
            "pool1 output shape: (1, 256, 12, 12)",
            "sequential3 output shape: (1, 384, 12, 12)",
            "pool2 output shape: (1, 384, 5, 5)",
            "dropout0 output shape: (1, 384, 5, 5)",
            "sequential4 output shape: (1, 10, 5, 5)",
            "pool3 output shape: (1, 10, 1, 1)",
            "flatten0 output shape: (1, 10)")),),
        trainings=(TrainingRun("nin", Hyperparameters(0.1, 10, 128, 224), (
            "loss 0.335, train acc 0.876, test acc 0.871",
            "2887.1 examples/sec on gpu(0)")),)),
    Section(
        key="7.4", title="Networks with Parallel Concatenations (GoogLeNet)", seed=MXNET_EDITION,
        outputs=(PrintedOutput("GoogLeNet's modules on a 1x1x96x96 input", _trace(
            "sequential0 output shape: (1, 64, 24, 24)",
            "sequential1 output shape: (1, 192, 12, 12)",
            "sequential2 output shape: (1, 480, 6, 6)",
            "sequential3 output shape: (1, 832, 3, 3)",
            "sequential4 output shape: (1, 1024, 1, 1)",
            "dense0 output shape: (1, 10)")),),
        trainings=(TrainingRun("googlenet", Hyperparameters(0.1, 10, 128, 96), (
            "loss 0.252, train acc 0.904, test acc 0.898",
            "1887.9 examples/sec on gpu(0)")),)),
    Section(
        key="7.5", title="Batch Normalization", seed=MXNET_EDITION,
        trainings=(
            TrainingRun("lenet_bn_scratch", Hyperparameters(1.0, 10, 256), (
                "loss 0.243, train acc 0.909, test acc 0.874",
                "16276.8 examples/sec on gpu(0)"),
                parameter_lines=(
                    "(array([2.1604235, 1.0069635, 2.871352, 1.5488696, 1.9600464, 1.897505], "
                    "ctx=gpu(0)),",
                    "array([ 1.271176, -0.2546511, -2.9246166, -1.6069758, -0.2943907,",
                    "-0.27459794], ctx=gpu(0)))"),
                note="gamma and beta of the first BatchNorm layer after training"),
            TrainingRun("lenet_bn", Hyperparameters(1.0, 10, 256), (
                "loss 0.247, train acc 0.909, test acc 0.814",
                "27746.0 examples/sec on gpu(0)")),
        )),
    Section(
        key="7.6", title="Residual Networks (ResNet)", seed=MXNET_EDITION,
        outputs=(
            PrintedOutput("Residual(3) on a 4x3x6x6 input", ("(4, 3, 6, 6)",)),
            PrintedOutput("Residual(6, use_1x1conv=True, strides=2) on the same input",
                          ("(4, 6, 3, 3)",)),
            PrintedOutput("ResNet-18's modules on a 1x1x224x224 input", _trace(
                "conv5 output shape: (1, 64, 112, 112)",
                "batchnorm4 output shape: (1, 64, 112, 112)",
                "relu0 output shape: (1, 64, 112, 112)",
                "pool0 output shape: (1, 64, 56, 56)",
                "sequential1 output shape: (1, 64, 56, 56)",
                "sequential2 output shape: (1, 128, 28, 28)",
                "sequential3 output shape: (1, 256, 14, 14)",
                "sequential4 output shape: (1, 512, 7, 7)",
                "pool1 output shape: (1, 512, 1, 1)",
                "dense0 output shape: (1, 10)")),
        ),
        trainings=(TrainingRun("resnet18", Hyperparameters(0.05, 10, 256, 96), (
            "loss 0.013, train acc 0.997, test acc 0.923",
            "4668.6 examples/sec on gpu(0)")),)),
    Section(
        key="7.7", title="Densely Connected Networks (DenseNet)", seed=MXNET_EDITION,
        outputs=(
            PrintedOutput("DenseBlock(2, 10) on a 4x3x8x8 input", ("(4, 23, 8, 8)",)),
            PrintedOutput("transition_block(10) on the dense block's output", ("(4, 10, 4, 4)",)),
        ),
        trainings=(TrainingRun("densenet", Hyperparameters(0.1, 10, 256, 96), (
            "loss 0.145, train acc 0.946, test acc 0.874",
            "4786.4 examples/sec on gpu(0)")),)),
    Section(
        key="5.11", title="Batch Normalization (older edition)", seed=GLUONBOOK_EDITION,
        trainings=(TrainingRun("lenet_bn_scratch", Hyperparameters(1.0, 5, 256), (
            "training on cpu(0)",
            "epoch 1, loss 0.6653, train acc 0.761, test acc 0.806, time 142.5 sec",
            "epoch 2, loss 0.3917, train acc 0.859, test acc 0.847, time 141.8 sec",
            "epoch 3, loss 0.3493, train acc 0.874, test acc 0.854, time 142.9 sec",
            "epoch 4, loss 0.3212, train acc 0.884, test acc 0.872, time 138.8 sec",
            "epoch 5, loss 0.3033, train acc 0.889, test acc 0.861, time 136.9 sec"),
            loop="train_ch5",
            parameter_lines=(
                "[1.3520054  1.3801662  1.8764832  1.4937813  0.93755937 1.8829043 ]",
                "[ 0.6523215   0.2318771   0.2659682   0.7197848  -0.51127845 -2.0419025 ]"),
            note="eps=1e-5 in this edition; gamma and beta of the first BatchNorm layer"),)),
    Section(
        key="5.12", title="Residual Networks (ResNet) (older edition)", seed=GLUONBOOK_EDITION,
        outputs=(
            PrintedOutput("Residual(num_channels=3) on a 4x3x6x6 input", ("(4, 3, 6, 6)",)),
            PrintedOutput("Residual(num_channels=6, use_1x1conv=True, strides=2)",
                          ("(4, 6, 3, 3)",)),
            PrintedOutput("the flat ResNet's layers on a 1x1x28x28 input", _trace(
                "conv52 output shape: (1, 64, 14, 14)",
                "batchnorm45 output shape: (1, 64, 14, 14)",
                "relu1 output shape: (1, 64, 14, 14)",
                "pool4 output shape: (1, 64, 7, 7)",
                "residual22 output shape: (1, 64, 7, 7)",
                "residual23 output shape: (1, 64, 7, 7)",
                "residual24 output shape: (1, 64, 7, 7)",
                "residual25 output shape: (1, 128, 4, 4)",
                "residual26 output shape: (1, 128, 4, 4)",
                "residual27 output shape: (1, 128, 4, 4)",
                "residual28 output shape: (1, 256, 2, 2)",
                "residual29 output shape: (1, 256, 2, 2)",
                "residual30 output shape: (1, 256, 2, 2)",
                "residual31 output shape: (1, 512, 1, 1)",
                "residual32 output shape: (1, 512, 1, 1)",
                "residual33 output shape: (1, 512, 1, 1)",
                "pool5 output shape: (1, 512, 1, 1)",
                "dense3 output shape: (1, 10)"), names_match=False),
        ),
        # The training cell's data-loading line is lost in the seed. 28x28 inputs (as in its shape
        # trace) fit the printed ~1,180 s per CPU epoch: about 0.3 GFLOP per training example at
        # 17 GFLOP/s; 96x96 would have needed about 200 GFLOP/s from a 2018 laptop CPU.
        trainings=(TrainingRun("gluonbook_resnet", Hyperparameters(0.05, 5, 256), (
            "training on cpu(0)",
            "epoch 1, loss 0.8086, train acc 0.760, test acc 0.861, time 1187.2 sec",
            "epoch 2, loss 0.3464, train acc 0.872, test acc 0.863, time 1174.8 sec"),
            loop="train_ch5", note="interrupted by the author after two of five epochs"),)),
    Section(
        key="5.13", title="Densely Connected Networks (DenseNet) (older edition)",
        seed=GLUONBOOK_EDITION,
        outputs=(
            PrintedOutput("DenseBlock(num_convs=2, num_channels=10) on a 4x3x8x8 input",
                          ("(4, 23, 8, 8)",)),
            PrintedOutput("transition_block(num_channels=10) on the dense block's output",
                          ("(4, 10, 4, 4)",)),
        ),
        trainings=(TrainingRun("densenet", Hyperparameters(0.1, 5, 256, 96), (),
                               loop="train_ch5", note="interrupted before any epoch finished"),)),
    # The 1.0 edition: each section's `trainer.fit` cell (Trainer(max_epochs=10),
    # FashionMNIST(batch_size=128, resize=...), the model's lr).
    *(Section(key=key, title=title, seed=EDITION_1_0 + source, trainings=tuple(
        TrainingRun(model, Hyperparameters(lr, 10, 128, resize), (), loop="Trainer.fit")
        for model, lr, resize in runs)) for key, title, source, runs in (
        ("8.1", "Deep Convolutional Neural Networks (AlexNet)", "alexnet.md",
         (("d2l10_alexnet", 0.01, 224),)),
        ("8.2", "Networks Using Blocks (VGG)", "vgg.md", (("d2l10_vgg11_small", 0.01, 224),)),
        ("8.3", "Network in Network (NiN)", "nin.md", (("d2l10_nin", 0.05, 224),)),
        ("8.4", "Multi-Branch Networks (GoogLeNet)", "googlenet.md",
         (("d2l10_googlenet", 0.01, 96),)),
        ("8.5", "Batch Normalization", "batch-norm.md",
         (("d2l10_lenet_bn_scratch", 0.1, None), ("d2l10_lenet_bn", 0.1, None))),
        ("8.6", "Residual Networks (ResNet) and ResNeXt", "resnet.md",
         (("d2l10_resnet18", 0.01, 96),)),
        ("8.7", "Densely Connected Networks (DenseNet)", "densenet.md",
         (("d2l10_densenet", 0.01, 96),)),
        ("8.8", "Designing Convolution Network Architectures", "cnn-design.md",
         (("d2l10_regnetx32", 0.05, 96),)),
    )),
)}


def section(key: str) -> Section:
    """The :class:`Section` with number ``key`` (e.g. ``"7.6"``); unknown keys list the valid ones."""
    try:
        return SECTIONS[key]
    except KeyError:
        raise ValueError(f"unknown book section {key!r}; sections: "
                         f"{', '.join(SECTIONS)}") from None


def training_run(section_key: str, model: Optional[str] = None) -> TrainingRun:
    """The section's training cell for ``model`` (or its first one when ``model`` is not trained
    there, e.g. the full VGG-11 whose section trains the small one)."""
    runs = section(section_key).trainings
    if not runs:
        raise ValueError(f"section {section_key} has no training cell")
    for run in runs:
        if run.model == model:
            return run
    return runs[0]


def parse_result(lines: Tuple[str, ...]) -> Dict[str, object]:
    """Final loss, accuracies (and speed, device) from a training cell's printed lines."""
    result: Dict[str, object] = {}
    for line in lines:
        for pattern in (RESULT_PATTERN, SPEED_PATTERN, EPOCH_PATTERN):
            match = pattern.match(line)
            if match:
                result.update({k: (v if k == "device" else float(v))
                               for k, v in match.groupdict().items()})
    return result
