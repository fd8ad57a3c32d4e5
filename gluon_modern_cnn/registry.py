"""The model registry's documented import path: ``from gluon_modern_cnn.registry import get_model``.

The registry lives in :mod:`gluon_modern_cnn.models` (``models/_registry.py``, as timm's
``_registry.py`` and torchvision's ``models/_api.py``); this module re-exports its public names.
"""
from .models._registry import (IMAGENET, InputSizeError, ModelInfo, get_model, list_models,
                               model_info, register_book_model, register_model, register_variant)

__all__ = ["ModelInfo", "register_model", "register_book_model", "register_variant", "IMAGENET",
           "get_model", "list_models", "model_info", "InputSizeError"]
