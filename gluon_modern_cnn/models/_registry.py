"""The model registry: every model of the package by name, with what the book says about it.

It lives inside ``models/`` as timm's ``_registry.py`` and torchvision's ``_api.py`` do: the
family modules import its decorators, and it imports no family (importing ``models`` registers
them all). ``gluon_modern_cnn.registry`` re-exports it.

Naming convention (one place, used by the CLI, tests, benchmarks and docs):

* ``alexnet``, ``vgg11``, ``nin``, ``googlenet``, ``resnet18``, ... : the book's code as written
  (custom blocks are ``nn.Block`` subclasses, containers ``nn.Sequential``).
* ``<name>_hybrid``: the faster twin, the same architecture built from ``HybridBlock``s so that it can
  be hybridized; it keeps the book's structure and attribute names, so one parameter file loads into
  both (``net.save_parameters`` / ``load_parameters`` use structural names such as ``1.0.conv1.weight``).
* ``<name>_imagenet``: the ImageNet configuration of a model (3 input channels, 1000 classes, 224x224
  inputs); without the suffix a model has the chapter's configuration (1 channel, 10 classes, the
  book's input size).
* Variants from the papers (the chapter's exercises) carry the papers' names: ``vgg16``, ``vgg16_bn``,
  ``resnet50_v1``, ``resnet50_v2``, ``densenet121``, ``googlenet_bn``, ...
"""
from __future__ import annotations

import difflib
import fnmatch
import functools
import inspect
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from .. import book
from ..runtime.compat import import_mxnet
from ..checks import check_positive_int
from ._shapes import SymbolicGraph, infer_shapes

__all__ = ["ModelInfo", "register_model", "register_book_model", "register_variant", "IMAGENET",
           "get_model", "list_models", "model_info",
           "InputSizeError"]


# MXNet warns when a block with hooks is hybridized, because the hooks of a *child* of a hybridized
# block do not run; the input-size check is a hook on the outermost block, where it always runs.
warnings.filterwarnings("ignore", message=r'(?s)".*" is being hybridized while still having forward '
                                          r'hook/pre-hook', category=UserWarning)


class InputSizeError(ValueError):
    """An input image is too small for the network (raised before any layer fails obscurely)."""


@dataclass(frozen=True)
class ModelInfo:
    """What the package knows about a registered model.

    Args:
        name: the registered name (``resnet18``, ``resnet18_hybrid``, ``resnet50_v1_imagenet``).
        constructor: builds the network; keyword arguments override the registered ones.
        family: the model family (``resnet``), one module of :mod:`gluon_modern_cnn.models`.
        section: the book section (``"7.6"``) or paper the model comes from.
        input_size: height = width of the input the model is used with.
        in_channels: channels of its input (1: Fashion-MNIST; 3: ImageNet).
        num_classes: width of its output.
        hybrid: built from HybridBlocks (can be hybridized).
        twin: the other member of a book/``_hybrid`` pair, ``None`` for a model without one.
        book_settings: key of ``book.SECTIONS`` whose training settings apply, if any.
        description: one line for listings and the models page.
        initializes_itself: the constructor initializes the parameters as the book's cell does
            (the 1.0 networks: Xavier, or MXNet's default uniform in the batch-norm LeNets);
            training keeps that instead of re-initializing with Xavier as ``train_ch6`` does.
    """

    name: str
    constructor: Callable = field(repr=False)
    family: str
    section: str
    input_size: int
    in_channels: int = 1
    num_classes: int = 10
    hybrid: bool = False
    twin: Optional[str] = None
    book_settings: Optional[str] = None
    description: str = ""
    initializes_itself: bool = False

    @property
    def input_shape(self) -> Tuple[int, int, int, int]:
        """Shape of one example in NCHW layout, batch dimension 1."""
        return (1, self.in_channels, self.input_size, self.input_size)

    @property
    def book_model(self) -> str:
        """The book's member of the model's pair (the ``nn.Block`` code as the book wrote it):
        ``resnet18`` for both ``resnet18`` and ``resnet18_hybrid``; a model without a twin (a
        paper's variant) is its own."""
        return self.twin if self.hybrid and self.twin else self.name

    @property
    def hybrid_model(self) -> Optional[str]:
        """The hybridizable member of the model's pair: ``resnet18_hybrid`` for both ``resnet18``
        and ``resnet18_hybrid``; a variant (a HybridBlock) is its own; ``None`` for an
        ``nn.Block`` model without a twin."""
        return self.name if self.hybrid else self.twin

    @property
    def hyperparameters(self):
        """The book's training settings for this model (``book.Hyperparameters``), or ``None``."""
        if self.book_settings is None:
            return None
        return book.training_run(self.book_settings, self.book_model).hyperparameters

    @property
    def min_input_size(self) -> int:
        """Smallest height/width the network accepts, calculated from its layers."""
        return _min_input_size(self.name)


_REGISTRY: Dict[str, ModelInfo] = {}


def register_model(name: str, *, family: str, section: str, input_size: int, in_channels: int = 1,
                   num_classes: int = 10, hybrid: bool = False, twin: Optional[str] = None,
                   book_settings: Optional[str] = None, description: str = "",
                   initializes_itself: bool = False,
                   kwargs: Optional[Mapping[str, Any]] = None) -> Callable[[Callable], Callable]:
    """Decorator registering a model constructor under ``name``; refuses duplicate names.

    ``kwargs`` are passed to the constructor on every call (callers may override them), so one
    builder function serves several names, for example once per row of a spec table.

    Args:
        name: the registered name; duplicates are refused.
        family, section, input_size, in_channels, num_classes, hybrid, twin, book_settings,
            description, initializes_itself: the :class:`ModelInfo` fields (``description``
            defaults to the builder docstring's first line).
        kwargs: keyword arguments passed to the builder on every call.
    """
    def decorator(builder: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is already registered "
                             f"(by {_REGISTRY[name].constructor.__qualname__})")
        constructor = functools.partial(builder, **kwargs) if kwargs else builder
        _REGISTRY[name] = ModelInfo(
            name=name, constructor=constructor, family=family, section=section,
            input_size=input_size, in_channels=in_channels, num_classes=num_classes, hybrid=hybrid,
            twin=twin, book_settings=book_settings, initializes_itself=initializes_itself,
            description=description or (builder.__doc__ or "").strip().splitlines()[0])
        return builder
    return decorator


def register_book_model(name: str, *, kwargs: Optional[Mapping[str, Any]] = None,
                        **metadata) -> Callable[[Callable], Callable]:
    """Register the book's version of a model as ``name`` and its faster twin as ``name_hybrid``.

    The builder must take a keyword ``hybrid``: ``False`` builds the book's code as written,
    ``True`` the same architecture from HybridBlocks.

    Args:
        name: the book model's name; the twin is ``name + '_hybrid'``.
        kwargs: keyword arguments passed to the builder on every call.
        **metadata: the other :func:`register_model` arguments.
    """
    def decorator(builder: Callable) -> Callable:
        register_model(name, twin=f"{name}_hybrid", kwargs=kwargs, **metadata)(builder)
        register_model(f"{name}_hybrid", twin=name, hybrid=True,
                       kwargs={**(kwargs or {}), "hybrid": True}, **metadata)(builder)
        return builder
    return decorator


#: The ImageNet configuration of the ``_imagenet`` variants.
IMAGENET = {"input_size": 224, "in_channels": 3, "num_classes": 1000}


def register_variant(name: str, builder: Callable, *, family: str, section: str,
                     input_size: int, description: str, kwargs: Mapping[str, Any],
                     book_settings: Optional[str] = None, chapter: bool = True) -> None:
    """Register a paper's variant (a HybridBlock) in both configurations: ``name`` is the
    chapter's (1 channel, 10 classes, ``input_size``; skipped with ``chapter=False``) and
    ``name_imagenet`` ImageNet's (3 channels, 1000 classes, 224x224).

    Args:
        name: the chapter configuration's name (``name_imagenet``: ImageNet's).
        builder: the variant's builder, taking ``num_classes``.
        family, section, input_size, description, book_settings: as :func:`register_model`'s.
        kwargs: keyword arguments passed to the builder on every call.
        chapter: also register the chapter's configuration.
    """
    common = dict(family=family, section=section, hybrid=True)
    if chapter:
        register_model(name, input_size=input_size, in_channels=1, num_classes=10,
                       book_settings=book_settings, description=description,
                       kwargs={**kwargs, "num_classes": 10}, **common)(builder)
    register_model(f"{name}_imagenet", description=f"{description}, ImageNet configuration",
                   kwargs={**kwargs, "num_classes": IMAGENET["num_classes"]}, **IMAGENET,
                   **common)(builder)


def list_models(pattern: str = "*") -> List[str]:
    """Names of the registered models matching a shell-style ``pattern``, sorted.

    Args:
        pattern: shell-style pattern (``'resnet*'``).
    """
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a registered model; unknown names raise ``ValueError``.

    Args:
        name: a registered name.
    """
    if not isinstance(name, str):
        raise ValueError(f"a model name is a string such as 'resnet18' (see list_models()); got "
                         f"{name!r}")
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown model {name!r}.{hint} Valid names: "
                         f"{', '.join(sorted(_REGISTRY))}") from None


def get_model(name: str, *, check_input_size: bool = True, **kwargs):
    """Build the registered model ``name``; keyword arguments go to its constructor.

    The returned network checks the size of its input on every call and raises
    :class:`InputSizeError` naming the minimum size when the images are too small for it (switch off
    with ``check_input_size=False``).

    Args:
        name: a registered name (:func:`list_models`).
        check_input_size: add the input-size check.
        **kwargs: override the builder's arguments (``num_classes=42``, ...).
    """
    info = model_info(name)
    _check_model_arguments(info, kwargs)
    net = info.constructor(**kwargs)
    if check_input_size:
        net.register_forward_pre_hook(_InputSizeCheck(info.name))
    return net


def _check_model_arguments(info: "ModelInfo", kwargs: Mapping[str, Any]) -> None:
    """Name a wrong keyword argument before the constructor (or MXNet, much later) trips on it:
    an unknown name, or a non-positive or non-integer value where the default is an integer
    (``num_classes``, ``depth``, ``growth_rate``, ...)."""
    parameters = inspect.signature(info.constructor).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        unknown = sorted(set(kwargs) - set(parameters))
        if unknown:
            raise ValueError(f"{info.name} takes no argument {', '.join(unknown)}; its arguments "
                             f"are {', '.join(parameters) or 'none'}")
    for key, value in kwargs.items():
        default = parameters[key].default if key in parameters else None
        if isinstance(default, int) and not isinstance(default, bool):
            check_positive_int(value, f"{info.name}'s {key}")


class _InputSizeCheck:
    """Forward pre-hook raising a clear error for images smaller than the network accepts."""

    def __init__(self, name: str):
        self.name = name
        self.checked: set = set()

    def __call__(self, block, inputs) -> None:
        if not hasattr(inputs[0], "shape"):  # a Symbol (export, shape inference): nothing to check
            return
        shape = tuple(inputs[0].shape)
        if shape in self.checked:
            return
        if len(shape) != 4:
            raise ValueError(f"{self.name} expects a batch of images of shape (batch, channels, "
                             f"height, width); got an input of shape {shape}")
        minimum = _min_input_size(self.name)
        if min(shape[2:]) < minimum:
            raise InputSizeError(
                f"{self.name} needs input images of at least {minimum}x{minimum} pixels; got "
                f"{shape[2]}x{shape[3]}. Resize the images (e.g. "
                f"load_data_fashion_mnist(batch_size, resize={model_info(self.name).input_size})).")
        self.checked.add(shape)


@functools.lru_cache(maxsize=None)
def _min_input_size(name: str) -> int:
    """Smallest square input size the network accepts (sizes are monotone: n works => n + 1 works).

    Calculated by the shape engine (:mod:`._shapes`): symbolically on the hybridizable member of
    the model's pair, traced once and allocating no parameter; a model without one runs a fresh
    instance on one zero image per size tried.
    """
    info = model_info(name)
    accepts = _size_probe(info)
    high = max(info.input_size, 1)
    if not accepts(high):
        raise RuntimeError(f"{name} does not accept its own input size {high}")
    low = 0  # invariant: accepts(high) and not accepts(low); size 0 is never accepted
    while high - low > 1:
        middle = (low + high) // 2
        if accepts(middle):
            high = middle
        else:
            low = middle
    return high


def _size_probe(info: ModelInfo) -> Callable[[int], bool]:
    mx = import_mxnet()

    def shape(size: int) -> Tuple[int, int, int, int]:
        return (1, info.in_channels, size, size)

    def build(model: str):
        with mx.name.NameManager():
            return model_info(model).constructor()

    if info.hybrid_model is not None:
        graph = SymbolicGraph(build(info.hybrid_model))
        return lambda size: graph.fits(shape(size))

    def accepts(size: int) -> bool:
        # A fresh network each time: a failed pass may leave deferred shapes half inferred.
        try:
            infer_shapes(build(info.name), shape(size))
        except ValueError:  # a window does not fit, here or while deferred init infers a shape
            return False
        return True
    return accepts
