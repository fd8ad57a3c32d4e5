"""Device selection: the book's try_gpu family, the "can this MXNet run on this GPU?" decision, and
parse_devices. The machine has no GPU, so GPU machines are simulated by replacing the two probes
(NVIDIA's driver, the installed MXNet) with made-up results, in devices.probes, where every caller
looks them up."""
import json
import subprocess
import sys
import time
import warnings

import mxnet as mx
import pytest

from gluon_modern_cnn.runtime import devices
from gluon_modern_cnn.runtime.devices import probes
from gluon_modern_cnn.runtime.devices import DriverProbe, GPU, GPUFallbackWarning, MXNetProbe

GiB = 2**30
H100 = GPU(0, "NVIDIA H100 80GB HBM3", (9, 0), 80 * GiB)
A100 = GPU(0, "NVIDIA A100-SXM4-40GB", (8, 0), 40 * GiB)
T4 = GPU(0, "Tesla T4", (7, 5), 15 * GiB)

CPU_WHEEL = MXNetProbe("1.9.1", "mxnet", cuda=False, num_gpus=0)


def cu112(num_gpus):
    return MXNetProbe("1.9.1", "mxnet-cu112", cuda=True, num_gpus=num_gpus)


def driver(*gpus, cuda=(12, 2)):
    return DriverProbe(tuple(gpus), "libcuda", "535.104.05", cuda)


NO_DRIVER = DriverProbe()


@pytest.fixture
def machine(monkeypatch):
    """Pretend to run on a machine whose driver and MXNet report the given results."""
    calls = {"driver": 0}

    def install(driver_probe, mxnet_probe):
        def fake_driver():
            calls["driver"] += 1
            return driver_probe
        monkeypatch.setattr(probes, "probe_driver", fake_driver)
        monkeypatch.setattr(probes, "probe_mxnet", lambda: mxnet_probe)
        devices._forget_probes()
        return calls

    yield install
    devices._forget_probes()


def no_warnings_or_output(capsys, func):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = func()
    assert capsys.readouterr() == ("", "")
    return result


# --- the decision, machine by machine ----------------------------------------------------------------

def test_no_driver_and_cpu_wheel_uses_cpu_without_complaint(machine, capsys):
    machine(NO_DRIVER, CPU_WHEEL)
    assert no_warnings_or_output(capsys, devices.try_gpu) == mx.cpu()
    assert devices.try_all_gpus() == [mx.cpu()]
    assert devices.num_gpus() == 0
    assert no_warnings_or_output(capsys, devices.warn_if_gpu_unusable) is None
    assert devices.gpu_status().verdict == "no NVIDIA GPU found; using the CPU"


def test_cpu_wheel_on_gpu_machine_falls_back_and_says_what_to_install(machine):
    machine(driver(A100), CPU_WHEEL)
    assert devices.try_gpu() == mx.cpu()
    with pytest.warns(GPUFallbackWarning) as record:
        message = devices.warn_if_gpu_unusable()
    assert str(record[0].message) == message
    assert "NVIDIA A100-SXM4-40GB (compute capability 8.0)" in message
    assert "built without CUDA" in message
    assert "pip uninstall -y mxnet && pip install mxnet-cu112==1.9.1" in message


def test_cpu_wheel_does_not_probe_the_driver_to_answer_try_gpu(machine):
    calls = machine(driver(A100), CPU_WHEEL)
    devices.try_gpu(), devices.try_all_gpus(), devices.num_gpus()
    assert calls["driver"] == 0
    devices.describe_devices()
    assert calls["driver"] == 1


def test_cu112_on_ampere_uses_the_gpus(machine):
    machine(driver(A100, GPU(1, A100.name, (8, 0))), cu112(2))
    assert devices.try_gpu() == mx.gpu(0)
    assert devices.try_gpu(1) == mx.gpu(1)
    assert devices.try_gpu(2) == mx.cpu()
    assert devices.try_all_gpus() == [mx.gpu(0), mx.gpu(1)]
    assert devices.num_gpus() == 2
    assert devices.warn_if_gpu_unusable() is None
    assert devices.gpu_status().verdict == "2 usable GPUs: gpu0, gpu1"


def test_cu112_on_hopper_is_silent_at_import_and_warns_once_when_training_starts(machine, capsys):
    machine(driver(H100), cu112(1))

    def import_a_training_module():
        # The book's signature: the default is evaluated when the module is imported.
        def train_ch6(net=None, device=devices.try_gpu()):
            return device
        return train_ch6()

    assert no_warnings_or_output(capsys, import_a_training_module) == mx.cpu()
    assert devices.try_all_gpus() == [mx.cpu()] and devices.num_gpus() == 0

    with pytest.warns(GPUFallbackWarning) as record:
        message = devices.warn_if_gpu_unusable()
    assert len(record) == 1
    assert "NVIDIA H100 80GB HBM3 (gpu0, compute capability 9.0)" in message
    assert "mxnet-cu112 1.9.1 runs on compute capability 5.0 to 8.x" in message
    assert "no MXNet 1.9.1 wheel has GPU code for compute capability 9.0" in message
    assert message.endswith("Using the CPU.")
    # Once per process: later calls return the explanation for logs but do not warn again.
    assert no_warnings_or_output(capsys, devices.warn_if_gpu_unusable) == message


def test_mixed_gpus_hand_out_only_the_runnable_one(machine):
    machine(driver(H100, GPU(1, A100.name, (8, 0))), cu112(2))
    assert devices.try_gpu() == mx.gpu(1)   # the first usable GPU
    assert devices.try_gpu(1) == mx.cpu()
    assert devices.try_all_gpus() == [mx.gpu(1)]
    assert devices.warn_if_gpu_unusable() is None   # a usable GPU exists: the CPU is a choice
    assert "Using gpu1 only." in devices.gpu_status().problem
    with pytest.raises(ValueError, match=r"gpu0 cannot be used\. NVIDIA H100.*Available: .*gpu1\."):
        devices.parse_devices("gpu0")


def test_cu102_on_ampere_recommends_cu112(machine):
    machine(driver(A100), MXNetProbe("1.9.1", "mxnet-cu102", cuda=True, num_gpus=1))
    assert devices.try_gpu() == mx.cpu()
    message = devices.gpu_status().problem
    assert "mxnet-cu102 1.9.1 runs on compute capability 3.0 to 7.x" in message
    assert "pip uninstall -y mxnet-cu102 && pip install mxnet-cu112==1.9.1" in message


def test_driver_too_old_for_the_wheel_is_explained(machine):
    machine(driver(T4, cuda=(10, 1)), cu112(0))
    assert devices.try_gpu() == mx.cpu()
    with pytest.warns(GPUFallbackWarning, match="Tesla T4 .compute capability 7.5."):
        message = devices.warn_if_gpu_unusable()
    assert "driver supports CUDA 10.1, mxnet-cu112 needs a driver for CUDA 11.0 or newer" in message


def test_unknown_cuda_build_is_trusted(machine):
    # Built from source: no table says what it runs on, so MXNet's own count decides (as in the book).
    machine(driver(H100), MXNetProbe("1.9.1", None, cuda=True, num_gpus=1))
    assert devices.try_gpu() == mx.gpu(0)


def test_gpus_seen_by_mxnet_but_not_by_the_driver_probe_are_trusted(machine):
    machine(NO_DRIVER, cu112(1))
    assert devices.try_all_gpus() == [mx.gpu(0)]


@pytest.mark.parametrize("wheel, capability, runs", [
    ("mxnet-cu112", (8, 6), True), ("mxnet-cu112", (8, 9), True), ("mxnet-cu112", (7, 5), True),
    ("mxnet-cu112", (5, 2), True), ("mxnet-cu112", (9, 0), False), ("mxnet-cu112", (10, 0), False),
    ("mxnet-cu112", (3, 7), False), ("mxnet-cu102", (3, 7), True), ("mxnet-cu102", (8, 0), False),
    ("mxnet", (8, 0), False),
])
def test_wheel_table_follows_cubin_compatibility(wheel, capability, runs):
    assert devices.KNOWN_WHEELS[wheel].runs_on(capability) is runs


def test_status_report_and_record(machine):
    machine(driver(H100, GPU(1, A100.name, (8, 0), 40 * GiB)), cu112(2))
    text = devices.describe_devices()
    assert "MXNet:  mxnet-cu112 1.9.1, CUDA enabled, sees 2 GPU(s)" in text
    assert "Driver: 535.104.05 (supports CUDA 12.2), queried via libcuda" in text
    assert "NVIDIA H100 80GB HBM3 (gpu0, compute capability 9.0), 80.0 GiB: NOT usable" in text
    assert "Verdict: 1 usable GPU: gpu1" in text
    record = json.loads(json.dumps(devices.gpu_status().as_dict()))
    assert record["usable"] == ["gpu1"]
    assert [(g["name"], g["compute_capability"], g["usable"]) for g in record["gpus"]] == [
        (H100.name, "9.0", False), (A100.name, "8.0", True)]


# --- the probes --------------------------------------------------------------------------------------

class FakeLibcuda:
    """Answers the CUDA driver API calls the probe makes, for the given (name, major, minor, bytes)."""

    def __init__(self, gpus, init_result=0, version=12020):
        self.gpus, self.init_result, self.version = gpus, init_result, version

    @staticmethod
    def _set(ref, value):
        ref._obj.value = value
        return 0

    def cuInit(self, flags):
        return self.init_result

    def cuGetErrorName(self, code, ref):
        return self._set(ref, {999: b"CUDA_ERROR_UNKNOWN"}.get(code, b"CUDA_ERROR_OTHER"))

    def cuDriverGetVersion(self, ref):
        return self._set(ref, self.version)

    def cuDeviceGetCount(self, ref):
        return self._set(ref, len(self.gpus))

    def cuDeviceGet(self, ref, ordinal):
        return self._set(ref, ordinal)

    def cuDeviceGetName(self, buffer, length, device):
        buffer.value = self.gpus[device.value][0].encode()[:length - 1]
        return 0

    def cuDeviceGetAttribute(self, ref, attribute, device):
        return self._set(ref, self.gpus[device.value][{75: 1, 76: 2}[attribute]])

    def cuDeviceTotalMem_v2(self, ref, device):
        return self._set(ref, self.gpus[device.value][3])


@pytest.fixture
def host(monkeypatch, tmp_path):
    """A fake host: no libcuda, no /proc/driver/nvidia, and any subprocess is an error."""
    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"unexpected subprocess {args}")
    monkeypatch.setattr(probes, "_load_libcuda", lambda: None)
    monkeypatch.setattr(probes, "_PROC_NVIDIA", tmp_path / "absent")
    monkeypatch.setattr(probes.subprocess, "run", no_subprocess)
    monkeypatch.setattr(probes.shutil, "which", lambda name: None)
    devices._forget_probes()
    yield monkeypatch, tmp_path
    devices._forget_probes()


def fake_proc(tmp_path, models=()):
    proc = tmp_path / "proc-nvidia"
    proc.mkdir()
    (proc / "version").write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  "
                                  "Sat Aug 19 01:15:15 UTC 2023\n")
    for i, model in enumerate(models):
        (proc / "gpus" / f"0000:0{i + 1}:00.0").mkdir(parents=True)
        (proc / "gpus" / f"0000:0{i + 1}:00.0" / "information").write_text(
            f"Model: \t\t {model}\nIRQ:   \t\t 35\nBus Type: \t PCIe\n")
    return proc


def test_no_driver_is_detected_without_a_subprocess(host):
    assert devices.probe_driver() == DriverProbe(source="none")


def test_libcuda_alone_gives_names_and_capabilities(host):
    monkeypatch, _ = host   # nvidia-smi is missing, libcuda is there
    monkeypatch.setattr(probes, "_load_libcuda", lambda: FakeLibcuda(
        [("NVIDIA H100 80GB HBM3", 9, 0, 80 * GiB), ("NVIDIA A100-SXM4-40GB", 8, 0, 40 * GiB)]))
    probe = devices.probe_driver()
    assert probe.source == "libcuda" and probe.error is None and probe.cuda_version == (12, 2)
    assert probe.gpus == (GPU(0, "NVIDIA H100 80GB HBM3", (9, 0), 80 * GiB),
                          GPU(1, "NVIDIA A100-SXM4-40GB", (8, 0), 40 * GiB))


def test_hidden_gpus_stay_hidden(host):
    # cuInit says CUDA_ERROR_NO_DEVICE when CUDA_VISIBLE_DEVICES hides every GPU: respect it.
    monkeypatch, tmp_path = host
    monkeypatch.setattr(probes, "_load_libcuda", lambda: FakeLibcuda([], init_result=100))
    monkeypatch.setattr(probes, "_PROC_NVIDIA", fake_proc(tmp_path, ["NVIDIA H100 80GB HBM3"]))
    probe = devices.probe_driver()
    assert probe.gpus == () and probe.error is None and probe.driver_version == "535.104.05"


def test_broken_libcuda_falls_back_to_nvidia_smi(host):
    monkeypatch, tmp_path = host
    monkeypatch.setattr(probes, "_load_libcuda", lambda: FakeLibcuda([], init_result=999))
    monkeypatch.setattr(probes, "_PROC_NVIDIA", fake_proc(tmp_path, ["NVIDIA H100 80GB HBM3"]))
    monkeypatch.setattr(probes.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    commands = []

    def nvidia_smi(command, **kwargs):
        commands.append(command)
        return subprocess.CompletedProcess(command, 0, "0, NVIDIA H100 80GB HBM3, 9.0, 81559\n", "")
    monkeypatch.setattr(probes.subprocess, "run", nvidia_smi)
    probe = devices.probe_driver()
    assert commands[0][:2] == ["/usr/bin/nvidia-smi",
                               "--query-gpu=index,name,compute_cap,memory.total"]
    assert probe.source == "nvidia-smi" and probe.driver_version == "535.104.05"
    assert probe.gpus == (GPU(0, "NVIDIA H100 80GB HBM3", (9, 0), 81559 * 2**20),)
    assert probe.error == "cuInit failed: CUDA_ERROR_UNKNOWN"


def test_old_nvidia_smi_falls_back_to_proc_names(host):
    monkeypatch, tmp_path = host
    monkeypatch.setattr(probes, "_PROC_NVIDIA", fake_proc(tmp_path, ["Tesla K80", "Tesla K80"]))
    monkeypatch.setattr(probes.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(probes.subprocess, "run", lambda command, **kwargs: subprocess.CompletedProcess(
        command, 2, "", 'Field "compute_cap" is not a valid field to query.\n'))
    probe = devices.probe_driver()
    assert probe.source == "/proc"
    assert probe.gpus == (GPU(0, "Tesla K80"), GPU(1, "Tesla K80"))
    assert 'nvidia-smi failed: Field "compute_cap" is not a valid field' in probe.error
    # With no capability known, the advice lists what each wheel runs on.
    status = devices.assess(probe, CPU_WHEEL)
    assert "2 x Tesla K80 (compute capability unknown)" in status.problem
    assert "mxnet-cu102==1.9.1 runs on compute capability 3.0 to 7.x" in status.problem


def test_real_machine_probe_is_cheap_and_silent(capsys):
    devices._forget_probes()
    try:
        start = time.perf_counter()
        device = no_warnings_or_output(capsys, devices.try_gpu)
        elapsed = time.perf_counter() - start
        status = no_warnings_or_output(capsys, devices.gpu_status)
    finally:
        devices._forget_probes()
    if not status.driver.gpus:   # this CI machine: no NVIDIA driver
        assert device == mx.cpu() and status.driver.source == "none"
    assert elapsed < 0.25, f"try_gpu() took {elapsed:.3f} s"


def test_importing_and_calling_try_gpu_prints_nothing():
    code = ("import gluon_modern_cnn.runtime.devices as d\n"
            "def train(device=d.try_gpu()): pass\n")
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                          text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


# --- parse_devices -----------------------------------------------------------------------------------

def test_parse_devices_on_a_two_gpu_machine(machine):
    machine(driver(A100, GPU(1, A100.name, (8, 0))), cu112(2))
    assert devices.parse_devices("cpu") == [mx.cpu(0)]
    assert devices.parse_devices("cpu0,cpu1") == [mx.cpu(0), mx.cpu(1)]
    assert devices.parse_devices("gpu0") == [mx.gpu(0)]
    assert devices.parse_devices("gpu:1") == [mx.gpu(1)]
    assert devices.parse_devices("gpu,cpu:1") == [mx.gpu(0), mx.cpu(1)]
    assert devices.parse_devices(" GPU0 , gpu1 ") == [mx.gpu(0), mx.gpu(1)]
    assert devices.parse_devices("auto") == [mx.gpu(0)]
    assert devices.parse_devices("all") == [mx.gpu(0), mx.gpu(1)]
    with pytest.raises(ValueError, match=r"gpu3 does not exist \(2 usable GPUs: gpu0, gpu1\)\. "
                                         r"Available: cpu, cpu1, \.\.\. \(any index\), gpu0, gpu1\."):
        devices.parse_devices("gpu3")


def test_parse_devices_without_gpu(machine):
    machine(NO_DRIVER, CPU_WHEEL)
    assert devices.parse_devices("auto") == [mx.cpu()]
    assert devices.parse_devices("all") == [mx.cpu()]
    # It says what to do instead, never that it uses the CPU while the command then stops.
    with pytest.raises(ValueError, match=r"gpu0 does not exist \(no NVIDIA GPU found\); use --device "
                                         r"cpu, or auto"):
        devices.parse_devices("gpu0")


@pytest.mark.parametrize("spec, message", [
    ("", "empty device spec"),
    ("  ", "empty device spec"),
    ("tpu0", "bad device 'tpu0'"),
    ("gpu-1", "bad device 'gpu-1'"),
    ("cpu0,,cpu1", "bad device ''"),
    ("auto,cpu0", "bad device 'auto'.*auto and all stand alone"),
    ("cpu0,cpu:0", "device 'cpu:0' is listed twice"),
])
def test_parse_devices_rejects_malformed_specs(machine, spec, message):
    machine(NO_DRIVER, CPU_WHEEL)
    with pytest.raises(ValueError, match=message):
        devices.parse_devices(spec)


def test_parse_devices_rejects_non_strings():
    with pytest.raises(TypeError, match="a device spec is a string"):
        devices.parse_devices(None)


def test_try_gpu_rejects_negative_index():
    with pytest.raises(ValueError, match="i >= 0"):
        devices.try_gpu(-1)
