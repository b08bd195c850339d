"""NVIDIA GPUs through NVML (`nvml[:INDEX]`), package nvidia-ml-py (module `pynvml`).

Source: NVIDIA NVML API Reference, Device Queries: `nvmlDeviceGetTotalEnergyConsumption` (mJ since
the driver was loaded; Volta and newer) and `nvmlDeviceGetPowerUsage` (mW; on many boards a ~1 s
moving average). Where the energy counter exists this is a counter meter: `energy_j` is the exact
difference since open, and integration uses it, so short phases are not under-sampled. `watts` is
the power reading. Jetson boards have no NVML: use ina3221/jtop there.
"""
from hw.meters.base import Meter, MeterDisconnected, MeterUnavailable, Sample, now


class NvmlMeter(Meter):
    kind = "nvml"
    rate_hz = 50.0

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
        index = int(self.arg or 0)
        try:
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self.name = _text(pynvml.nvmlDeviceGetName(self._handle))
            pynvml.nvmlDeviceGetPowerUsage(self._handle)
        except pynvml.NVMLError as exc:
            pynvml.nvmlShutdown()
            raise MeterUnavailable("GPU %d cannot report power through NVML: %s" % (index, exc))
        try:
            self._e0 = pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
            self.counter = True
        except pynvml.NVMLError:
            self.counter = False
        self.rail_names = ["gpu%d" % index]
        self._open = True

    def read(self):
        nv = self._nv
        try:
            watts = nv.nvmlDeviceGetPowerUsage(self._handle) / 1000.0
            energy = (nv.nvmlDeviceGetTotalEnergyConsumption(self._handle) - self._e0) / 1000.0 \
                if self.counter else None
        except nv.NVMLError as exc:
            raise MeterDisconnected("NVML read failed: %s" % exc)
        return Sample(now(), watts, {self.rail_names[0]: watts}, energy_j=energy)

    def info(self):
        out = super(NvmlMeter, self).info()
        out["gpu"] = getattr(self, "name", None)
        return out

    def close(self):
        if getattr(self, "_open", False):
            self._open = False
            self._nv.nvmlShutdown()


def _text(value):
    return value.decode() if isinstance(value, bytes) else value
