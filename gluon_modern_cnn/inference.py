"""Using trained parameters: load them, measure test accuracy, classify images.

What ``gluon-modern-cnn evaluate`` and ``predict`` (and ``export``) run. Parameters saved by a
training run know the ``resize`` they were trained with (the run folder's ``settings.json``);
images go through the training pipeline's own resize and scaling, so a prediction sees exactly
what training saw.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import mxnet as mx
import numpy

from ._compat import mxnet_error_summary
from .checkpoint import load_parameters
from .data import IMAGE_SIZE, FastImageLoader, get_fashion_mnist_labels
from .devices import try_gpu
from .experiment import OUTPUT_FILES, check_input_size, default_resize, fashion_mnist_loader
from .registry import get_model, model_info
from .training import evaluate_accuracy_gpu

__all__ = ["trained_resize", "load_trained", "evaluate_model", "read_image", "Prediction",
           "predict_images"]

def trained_resize(model: str, params: Union[str, Path]) -> Optional[int]:
    """The ``resize`` the parameters in ``params`` were trained with: that of the run folder they
    are in (its ``settings.json``, if it trained ``model`` or its twin), else the book's."""
    info = model_info(model)
    try:
        saved = json.loads((Path(params).parent / OUTPUT_FILES["settings"]).read_text())
        run = saved["settings"]
        if run["model"] in (info.book_model, info.hybrid_model):
            return run["resize"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not a run folder of this model: the book's resize
    return default_resize(model)


def load_trained(model: str, params: Union[str, Path], *, resize: Optional[int] = None,
                 device: Optional[mx.Context] = None, hybrid: bool = False):
    """Build ``model`` with the parameters in ``params`` on ``device``; returns ``(net, resize)``.

    ``resize`` defaults to :func:`trained_resize`. With ``hybrid``, a book ``nn.Block`` model is
    built as its hybridizable twin (same parameter names). A file of another model or of another
    input size raises ``ValueError`` naming the problem.
    """
    info = model_info(model)
    if hybrid and not info.hybrid:
        if info.hybrid_model is None:
            raise ValueError(f"{model} is an nn.Block (its forward is Python code) without a "
                             f"hybridizable twin, so it has no graph to export")
        model, info = info.hybrid_model, model_info(info.hybrid_model)
    resize = trained_resize(model, params) if resize is None else resize
    check_input_size(model, resize)
    device = device or try_gpu()
    net = get_model(model)
    load_parameters(net, params, ctx=[device], what=model)
    size = resize or IMAGE_SIZE
    try:
        with mx.autograd.predict_mode():
            net(mx.np.zeros((1, info.in_channels, size, size), ctx=device))
    except mx.base.MXNetError as err:
        raise ValueError(f"the parameters in {params} do not fit {size}x{size} inputs; they were "
                         f"trained with another resize (pass it with --resize): "
                         f"{mxnet_error_summary(err)}") from None
    return net, resize


def evaluate_model(model: str, params: Union[str, Path], *, data_root=None,
                   batch_size: int = 256, resize: Optional[int] = None,
                   device: Optional[mx.Context] = None,
                   subset: Optional[int] = None) -> Tuple[float, int]:
    """Test accuracy of ``model`` with the parameters in ``params`` on Fashion-MNIST's test
    images (the first ``subset`` of them); returns ``(accuracy, number of images)``."""
    device = device or try_gpu()
    net, resize = load_trained(model, params, resize=resize, device=device)
    test_iter = fashion_mnist_loader(False, batch_size=batch_size, resize=resize, subset=subset,
                                     data_root=data_root)
    return evaluate_accuracy_gpu(net, test_iter, device), len(test_iter.indices())


def read_image(path: Union[str, Path]) -> numpy.ndarray:
    """A grayscale image as a uint8 array of shape (height, width), from a PNG, JPEG or other file
    Pillow reads, or from a ``.npy`` array (uint8, or floats in [0, 1] as ``ToTensor`` makes).

    Fashion-MNIST images are light objects on a black background; photos need the same look.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist")
    if path.suffix.lower() == ".npy":
        try:
            array = numpy.load(path, allow_pickle=False)
        except ValueError as err:
            raise ValueError(f"{path} is not a numpy array file: {err}") from None
        if array.ndim == 3 and 1 in (array.shape[0], array.shape[-1]):
            array = array.reshape(array.shape[1:] if array.shape[0] == 1 else array.shape[:-1])
        if array.ndim != 2:
            raise ValueError(f"{path} holds an array of shape {array.shape}; expected one grayscale "
                             f"image of shape (height, width)")
        if numpy.issubdtype(array.dtype, numpy.floating):
            if not (array.min() >= 0 and array.max() <= 1):
                raise ValueError(f"{path} holds floats outside [0, 1]; expected pixel values in "
                                 f"[0, 1] or uint8 values in [0, 255]")
            array = numpy.round(array * 255)
        elif array.dtype != numpy.uint8:
            raise ValueError(f"{path} holds {array.dtype} values; expected uint8 pixels or floats "
                             f"in [0, 1]")
        return array.astype(numpy.uint8)
    from PIL import Image, UnidentifiedImageError  # Pillow comes with matplotlib
    try:
        with Image.open(path) as image:
            return numpy.asarray(image.convert("L"), dtype=numpy.uint8)
    except UnidentifiedImageError:
        raise ValueError(f"{path} is neither an image file Pillow can read (PNG, JPEG, ...) nor a "
                         f".npy array") from None


@dataclass(frozen=True)
class Prediction:
    """The most likely classes of one image, most likely first, with their probabilities."""

    source: str
    classes: List[Tuple[str, float]]


def predict_images(model: str, params: Union[str, Path], images: Sequence[Union[str, Path]], *,
                   resize: Optional[int] = None, device: Optional[mx.Context] = None,
                   top: int = 3) -> List[Prediction]:
    """Classify image files with ``model`` and the parameters in ``params``: each image is made
    grayscale, resized as the model was trained (the training pipeline's own resize) and scaled
    to [0, 1]."""
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 10:
        raise ValueError(f"top must be an integer from 1 to 10 (the number of classes); got {top!r}")
    pictures = [(str(path), read_image(path)) for path in images]  # bad files fail before the model
    device = device or try_gpu()
    net, resize = load_trained(model, params, resize=resize, device=device)
    size = resize or IMAGE_SIZE
    predictions = []
    for source, pixels in pictures:
        loader = FastImageLoader(pixels[None], [0], 1, resize=size, prefetch=0)
        X, _ = next(iter(loader))
        with mx.autograd.predict_mode():
            probabilities = mx.npx.softmax(net(X.as_in_ctx(device)))[0].asnumpy()
        best = numpy.argsort(-probabilities, kind="stable")[:top]
        predictions.append(Prediction(source, list(zip(get_fashion_mnist_labels(best),
                                                       probabilities[best].tolist()))))
    return predictions
