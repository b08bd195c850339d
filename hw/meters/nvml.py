"""NVIDIA GPUs through NVML (`nvml[:INDEX]`), package nvidia-ml-py (module `pynvml`).

Source: NVIDIA NVML API Reference, Device Queries: `nvmlDeviceGetTotalEnergyConsumption` (mJ since
the driver was loaded; Volta and newer) and `nvmlDeviceGetPowerUsage` (mW; on many boards a ~1 s
moving average). Where the energy counter exists this is a counter meter: `energy_j` is the exact
difference since open, and integration uses it, so short phases are not under-sampled. `watts` is
the power reading. On Jetson, NVML exists on JetPack 6/7 but reports power as NotSupported: open()
probes it and says so; use ina3221/jtop/tegrastats there.
"""
from hw.meters.base import Meter, MeterDisconnected, MeterSpecError, MeterUnavailable, Sample, now


class NvmlMeter(Meter):
    kind = "nvml"
    rate_hz = 50.0
    scope = "gpu"
    # nvidia-smi(1), power.draw: "accurate to within +/- 5 watts".
    accuracy_rel = 0.0
    accuracy_abs_w = 5.0
    accuracy_source = "nvidia-smi(1), power.draw: +-5 W"
    max_w = 2000.0  # above any single GPU's board power limit
    # GetPowerUsage is a mean over about 1 s on recent GPUs (NVML reference; the Zeus project's issue 45
    # measured it on A100/H100); with the energy counter the trace integrates the counter instead.
    sampling = "average"
    sampling_window_s = 1.0
    sampling_source = "nvmlDeviceGetPowerUsage: a ~1 s average on recent GPUs"

    def __init__(self, spec, arg=None, options=None):
        super().__init__(spec, arg, options)
        if arg is not None and not arg.isdigit():
            raise MeterSpecError("nvml:%s: the argument is a GPU index, e.g. nvml:0" % arg)
        self.index = int(arg or 0)
        self._nv = None
        self._handle = None
        self.name = None

    def open(self):
        try:
            import pynvml
        except ImportError:
            raise MeterUnavailable("the nvml meter needs nvidia-ml-py: `pip install nvidia-ml-py` (module pynvml)")
        self._nv = pynvml
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise MeterUnavailable("NVML did not initialise (%s): no NVIDIA driver or GPU here" % exc)
        index = self.index
        try:
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self.name = _text(pynvml.nvmlDeviceGetName(self._handle))
            pynvml.nvmlDeviceGetPowerUsage(self._handle)
        except pynvml.NVMLError as exc:
            self._handle = None
            pynvml.nvmlShutdown()
            raise MeterUnavailable("GPU %d cannot report power through NVML: %s" % (index, exc))
        try:
            self._e0 = pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
            self.counter = True
            self.sampling = "counter"
            self.sampling_source = "nvmlDeviceGetTotalEnergyConsumption: the energy counter, exact between reads"
        except pynvml.NVMLError:
            self.counter = False
        self.rail_names = ["gpu%d" % index]
        self.provenance = {"gpu": self.name, "index": index, "driver": _driver_version(pynvml)}

    def read_sample(self):
        nv = self._nv
        try:
            watts = nv.nvmlDeviceGetPowerUsage(self._handle) / 1000.0
            energy = (nv.nvmlDeviceGetTotalEnergyConsumption(self._handle) - self._e0) / 1000.0 \
                if self.counter else None
        except nv.NVMLError as exc:
            raise MeterDisconnected("NVML read failed: %s" % exc)
        return Sample(now(), watts, {self.rail_names[0]: watts}, energy_j=energy)

    def info(self):
        out = super().info()
        out["gpu"] = self.name
        return out

    def close(self):
        if self._handle is not None:
            self._handle = None
            self._nv.nvmlShutdown()


def _driver_version(nv):
    try:
        return _text(nv.nvmlSystemGetDriverVersion())
    except nv.NVMLError:
        return None


def _text(value):
    return value.decode() if isinstance(value, bytes) else value
