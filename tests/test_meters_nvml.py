"""NVML for real, only where an NVIDIA GPU and driver exist (skipped elsewhere)."""
import time

import pytest

from hw.energy import integrate
from hw.meters import MeterUnavailable, open_meter
from hw.sampler import PowerSampler
from hw.trace import read_trace

pytestmark = pytest.mark.board  # hw/ only: also run under the board's stack (dev.py)


@pytest.fixture
def nvml():
    try:
        meter = open_meter("nvml:0")
    except MeterUnavailable as exc:
        pytest.skip("no NVML GPU here: %s" % exc)
    yield meter
    meter.close()


def test_nvml_reads_power_and_energy(nvml):
    s = nvml.read()
    assert 1.0 < s.watts < 2000.0 and s.rails == {"gpu0": s.watts}
    if nvml.counter:
        time.sleep(0.3)
        later = nvml.read()
        assert later.energy_j > (s.energy_j or 0.0)
    assert nvml.info()["kind"] == "nvml" and nvml.info()["gpu"]


def test_nvml_counter_matches_power_over_a_second(nvml, tmp_path):
    with PowerSampler(nvml, str(tmp_path), rate_hz=20.0):
        t0 = time.time()
        time.sleep(1.5)
        t1 = time.time()
    tr = read_trace(str(tmp_path))
    r = integrate(tr, t0, t1)
    assert r.coverage > 0.95
    if nvml.counter:
        assert r.method == "counter"
        # An idle GPU: the counter's mean power agrees with the polled readings within 25%.
        assert r.mean_w == pytest.approx(float(tr.watts.mean()), rel=0.25)
