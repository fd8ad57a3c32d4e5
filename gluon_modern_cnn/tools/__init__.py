"""Tools over the models and the training code: FLOPs and parameters per layer (``flops``), the
book's shape traces (``summary``), ``docs/models.md`` (``model_docs``), replaying the book's cells
against its printed outputs (``crosscheck``) and MXNet and ONNX export (``export``). The
benchmarks are the sibling package ``gluon_modern_cnn.bench``.
"""
