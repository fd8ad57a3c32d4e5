"""Devices: the book's ``num_gpus``, ``try_gpu`` and ``try_all_gpus``, and "can this MXNet use this GPU?".

Section 5.6 of the book defines ``try_gpu`` as ``gpu(i)`` if it exists, else ``cpu()``, trusting MXNet's
GPU count. On today's machines that trust fails in two ways this package guards against:

* the CPU-only wheel (``mxnet``) reports zero GPUs even on a GPU machine, so training silently runs on
  the CPU;
* a CUDA wheel reports GPUs it has no code for: ``mxnet-cu112==1.9.1`` contains GPU code for compute
  capability 5.0 to 8.6 and no PTX, so on Hopper (H100/H200, 9.0) and newer the first layer dies with
  "no kernel image is available for execution on the device".

NVIDIA's driver is therefore asked directly which GPUs exist and what their compute capability is,
that is compared with the GPU code the installed wheel was built with, and GPUs the wheel cannot run
are never handed out: the functions fall back to ``mx.cpu()``. One module per step, each importing
only the ones above it in this list:

* :mod:`.wheels`: what each MXNet wheel can run on (:data:`KNOWN_WHEELS`);
* :mod:`.decision`: the probes' results as plain data and the pure :func:`assess` ("which GPUs can
  this MXNet run on, and if none, why and what to install");
* :mod:`.probes`: asking NVIDIA's driver and the installed MXNet, once per process (cached);
  :func:`gpu_status` is the verdict for this machine;
* :mod:`.selection`: the book's functions, ``--device`` parsing (:func:`parse_devices`) and the
  once-per-process :class:`GPUFallbackWarning`.

``try_gpu()`` and friends never print or warn; on a CPU wheel they do not even probe the driver
(the answer is the CPU either way), and on a CUDA wheel the probe costs what MXNet's own GPU count
costs. :func:`warn_if_gpu_unusable` and :func:`describe_devices` show the explanation.
"""
from .decision import GPU, DriverProbe, GPUStatus, MXNetProbe, assess
from .probes import gpu_status, probe_driver, probe_mxnet
from .selection import (GPUFallbackWarning, as_contexts, describe_devices, device_spec, num_gpus,
                        parse_devices, resolve_devices, try_all_gpus, try_gpu,
                        warn_if_gpu_unusable)
from .selection import _forget_probes  # noqa: F401  (tests reset every cache through the package)
from .wheels import KNOWN_WHEELS, WheelBuild

__all__ = ["num_gpus", "try_gpu", "try_all_gpus", "parse_devices", "device_spec", "as_contexts",
           "resolve_devices", "warn_if_gpu_unusable",
           "describe_devices", "gpu_status", "assess", "probe_driver", "probe_mxnet",
           "GPU", "DriverProbe", "MXNetProbe", "GPUStatus", "WheelBuild", "KNOWN_WHEELS",
           "GPUFallbackWarning"]
