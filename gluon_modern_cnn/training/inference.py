"""Using trained parameters: load them, measure test accuracy, classify images.

What ``gluon-modern-cnn evaluate`` and ``predict`` (and ``export``) run. Parameters saved by a
training run know the ``resize`` they were trained with (the run folder's ``settings.json``);
images go through the training pipeline's own resize and scaling, so a prediction sees exactly
what training saw.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import mxnet as mx
import numpy

from ..runtime.compat import mxnet_error_summary
from .checkpoint import load_parameters, read_sidecar
from ..data import IMAGE_SIZE, FastImageLoader, fashion_mnist_loader, get_fashion_mnist_labels
from ..runtime.devices import try_gpu
from .experiment import OUTPUT_FILES
from .run_plan import check_input_size, default_resize
from ..models import get_model, model_info
from .loop import evaluate_accuracy_gpu

__all__ = ["trained_resize", "load_trained", "evaluate_model", "read_image", "Prediction",
           "predict_images"]

def trained_resize(model: str, params: Union[str, Path]) -> Optional[int]:
    """The ``resize`` the parameters in ``params`` were trained with: from the file beside them
    (``model.params.json``, :func:`checkpoint.read_sidecar`), else from the run folder they are in
    (its ``settings.json``), when either is about ``model`` or its twin; else the book's.

    Args:
        model: the registered model name.
        params: the parameter file.

    Returns:
        The image side in pixels, or ``None`` for Fashion-MNIST's own 28x28.
    """
    known, resize = _saved_resize(model, params)
    return resize if known else default_resize(model)


def _saved_resize(model: str, params: Union[str, Path]) -> Tuple[bool, Optional[int]]:
    """``(True, resize)`` when a file beside ``params`` says it, else ``(False, None)``."""
    info = model_info(model)
    about = read_sidecar(params)
    if about is not None and about.get("model") in (info.book_model, info.hybrid_model) and "resize" in about:
        return True, about["resize"]
    try:
        saved = json.loads((Path(params).parent / OUTPUT_FILES["settings"]).read_text())
        run = saved["settings"]
        if run["model"] in (info.book_model, info.hybrid_model):
            return True, run["resize"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not a run folder of this model
    return False, None


def load_trained(model: str, params: Union[str, Path], *, resize: Optional[int] = None,
                 device: Optional[mx.Context] = None, hybrid: bool = False):
    """Build ``model`` with the parameters in ``params`` on ``device``.

    Args:
        model: the registered model name.
        params: the parameter file.
        resize: the input size the parameters were trained at, in pixels; default ``None``,
            :func:`trained_resize` (with a note on stderr when nothing says it).
        device: where to load; default ``None``, :func:`try_gpu`.
        hybrid: build a book ``nn.Block`` model as its hybridizable twin (same parameter names);
            default False.

    Returns:
        ``(net, resize)``.

    Raises:
        ValueError: for a file of another model or of another input size, or ``hybrid`` for a
            model without a twin.
    """
    info = model_info(model)
    if hybrid and not info.hybrid:
        if info.hybrid_model is None:
            raise ValueError(f"{model} is an nn.Block (its forward is Python code) without a "
                             f"hybridizable twin, so it has no graph to export")
        model, info = info.hybrid_model, model_info(info.hybrid_model)
    known = resize is not None
    if not known:
        known, resize = _saved_resize(model, params)
        resize = resize if known else default_resize(model)
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
    if not known:
        print(f"note: nothing beside {params} says what input size it was trained at; assumed "
              f"{model}'s book size {size}x{size}. If it was trained at another size, pass "
              f"--resize N (resize= in Python)", file=sys.stderr)
    return net, resize


def evaluate_model(model: str, params: Union[str, Path], *, data_root=None,
                   batch_size: int = 256, resize: Optional[int] = None,
                   device: Optional[mx.Context] = None,
                   subset: Optional[int] = None) -> Tuple[float, int]:
    """Test accuracy of ``model`` with the parameters in ``params`` on Fashion-MNIST's test images.

    Args:
        model: the registered model name.
        params: the parameter file.
        data_root: the folder with Fashion-MNIST; default ``None``, :func:`resolve_data_root`'s.
        batch_size: images per evaluation batch (default 256).
        resize: the input size, in pixels; default ``None``, as :func:`load_trained`.
        device: where to evaluate; default ``None``, :func:`try_gpu`.
        subset: evaluate the first ``subset`` test images only; default ``None``, all 10,000.

    Returns:
        ``(accuracy, number of images)``.
    """
    device = device or try_gpu()
    net, resize = load_trained(model, params, resize=resize, device=device)
    test_iter = fashion_mnist_loader(False, batch_size, resize, fast=True, root=data_root,
                                     subset=subset)
    return evaluate_accuracy_gpu(net, test_iter, device), len(test_iter.indices())


def read_image(path: Union[str, Path]) -> numpy.ndarray:
    """A grayscale image as a uint8 array of shape (height, width).

    Fashion-MNIST images are light objects on a black background; photos need the same look.

    Args:
        path: a PNG, JPEG or other file Pillow reads, or a ``.npy`` array (uint8, or floats in
            [0, 1] as ``ToTensor`` makes).

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: for a file that is no readable image or a damaged or truncated one, or an
            array that is not one grayscale image.
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
        if array.ndim == 2 and array.size == 0:
            raise ValueError(f"{path} holds an empty array of shape {array.shape}; expected one "
                             f"grayscale image")
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
    from PIL import Image, ImageFile, UnidentifiedImageError  # Pillow comes with matplotlib
    # gluoncv's data modules relax this for the whole process; a truncated file must not pass.
    lenient, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
    try:
        with Image.open(path) as image:
            return _grayscale(image)
    except UnidentifiedImageError:
        raise ValueError(f"{path} is neither an image file Pillow can read (PNG, JPEG, ...) nor a "
                         f".npy array") from None
    except Image.DecompressionBombError as err:
        raise ValueError(f"{path} is refused as a possible decompression bomb ({err})") from None
    except (OSError, SyntaxError) as err:  # truncated or damaged data; SyntaxError: bad header
        raise ValueError(f"{path} is a damaged or truncated image: {err}") from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = lenient


def _grayscale(image) -> numpy.ndarray:
    """An image of any Pillow mode as 8-bit gray with its full range: 16- and 32-bit modes are
    scaled by their bit depth (``convert("L")`` clips them to 0/255), palettes are looked up,
    transparency is composited on black (Fashion-MNIST's background), CMYK goes through RGB."""
    image.load()  # decodes now: a truncated file fails here, inside read_image's checks
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = numpy.asarray(image, dtype=numpy.float64)
        if image.mode.startswith("I;16"):
            top = 65535.0
        elif image.mode == "I":
            top = 65535.0 if array.max(initial=0) <= 65535 else float(2 ** 32 - 1)
        else:
            top = 1.0 if array.max(initial=0) <= 1 else 255.0  # floats in [0, 1] or [0, 255]
        return numpy.round(numpy.clip(array / top, 0, 1) * 255).astype(numpy.uint8)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = numpy.asarray(image.convert("RGBA"), dtype=numpy.float64)
        gray = rgba[..., :3] @ numpy.array([0.299, 0.587, 0.114])  # ITU-R 601, as "L"
        return numpy.round(gray * rgba[..., 3] / 255).astype(numpy.uint8)
    if image.mode == "CMYK":
        image = image.convert("RGB")
    return numpy.asarray(image.convert("L"), dtype=numpy.uint8)


@dataclass(frozen=True)
class Prediction:
    """The most likely classes of one image, most likely first, with their probabilities.

    Args:
        source: the image file, as given.
        classes: ``(class name, probability)`` pairs, most likely first.
    """

    source: str
    classes: List[Tuple[str, float]]


def predict_images(model: str, params: Union[str, Path], images: Sequence[Union[str, Path]], *,
                   resize: Optional[int] = None, device: Optional[mx.Context] = None,
                   top: int = 3) -> List[Prediction]:
    """Classify image files with ``model`` and the parameters in ``params``: each image is made
    grayscale, resized as the model was trained (the training pipeline's own resize) and scaled
    to [0, 1].

    Args:
        model: the registered model name.
        params: the parameter file.
        images: the image files (see :func:`read_image`); all are read before the model loads.
        resize: the input size, in pixels; default ``None``, as :func:`load_trained`.
        device: where to run; default ``None``, :func:`try_gpu`.
        top: how many classes to give per image, from 1 to 10 (default 3).

    Returns:
        One :class:`Prediction` per image, in order.
    """
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
