"""The runtime layer, at the bottom of the package: what the code runs on and with.

MXNet 1.9.1 on today's numpy and the ``set_np``/legacy switch (``compat``), MXNet's private
internals the package relies on, in one place (``mxnet_internals``), which devices exist and can be
used (``devices``, the book's ``try_gpu``), the machine description in results (``machine``),
atomic files and run folders (``files``), the terminal or notebook the output goes to
(``console``) and the parameter-server cluster (``distributed``).

Named ``runtime`` rather than ``platform`` so that it never shadows the standard library's
``platform`` module, which ``machine`` reads. It imports nothing else of the package but
``checks``; this ``__init__`` imports nothing, so that ``runtime.compat`` runs before MXNet loads.
"""
