"""Fashion-MNIST for the chapter's training cells: ``d2l.load_data_fashion_mnist`` without d2l.

- :mod:`.fashion_mnist`: where the IDX files live, downloading them, reading and verifying their
  decompressed content (the book's ``gluon.data.vision.FashionMNIST`` checks the sha1 of the
  *compressed* files against MXNet's own re-packaging and so rejects correct copies compressed by
  anyone else);
- :mod:`.pipelines`: the book's per-sample pipeline (``Resize`` + ``ToTensor`` in a
  ``gluon.data.DataLoader``) and the fast batch pipeline (:class:`FastImageLoader`: whole batches
  resized in one operator, bit-identical, seeded per-epoch shuffling, sharding, prefetch);
- :mod:`.loaders`: :func:`fashion_mnist_loader`, the one factory every caller uses, and the book's
  :func:`load_data_fashion_mnist`.

``gluon_modern_cnn.data`` re-exports their public names.
"""
from .fashion_mnist import (IMAGE_SIZE, MIRRORS, ROOT_ENV_VAR, TEXT_LABELS, DataFileError,
                            fashion_mnist_files, get_fashion_mnist_labels,
                            load_fashion_mnist_arrays, resolve_data_root)
from .loaders import LegacyBatches, Loader, fashion_mnist_loader, load_data_fashion_mnist
from .pipelines import (FashionMNIST, FashionMNISTDataset, FastImageLoader, _book_loader,
                        get_dataloader_workers)

__all__ = [
    "IMAGE_SIZE", "TEXT_LABELS", "MIRRORS", "ROOT_ENV_VAR", "DataFileError", "resolve_data_root",
    "fashion_mnist_files", "load_fashion_mnist_arrays", "FashionMNISTDataset", "FashionMNIST",
    "get_dataloader_workers", "FastImageLoader", "fashion_mnist_loader", "load_data_fashion_mnist",
    "get_fashion_mnist_labels", "Loader", "LegacyBatches",
]
