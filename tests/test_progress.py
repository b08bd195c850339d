"""The live progress line: watts and joules under hw.energy's gap rule, and "meter lost" while no sample
arrives."""
import time

import pytest

from harness import console
from harness.console import Progress


def test_live_line_counts_joules_and_says_when_the_meter_is_lost(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(console.time, "monotonic", lambda: clock[0])
    p = Progress("r1", live=False)
    for k in range(11):  # 1 s of 10 W at 10 Hz
        p.on_power(100.0 + 0.1 * k, 10.0)
    assert p.text().endswith("10.0 W, 0.01 kJ") and "lost" not in p.text()
    clock[0] += 1.0  # a second batch is late: not lost yet (the sampler flushes once a second)
    assert "lost" not in p.text()
    clock[0] += 5.0
    assert "meter lost for 6 s" in p.text() and "W," not in p.text()
    p.on_power(100.9, 10.0)  # an old row read late does not count as the meter's return
    assert "meter lost" in p.text()
    p.on_power(106.0, 10.0)  # back after 5 s: the gap is not billed
    assert "lost" not in p.text() and p.energy.energy_j == pytest.approx(10.0)
    assert "5 s uncovered" in p.text()


def test_a_line_without_power_has_no_meter_part():
    p = Progress("r1", live=False)
    assert "W" not in p.text() and "lost" not in p.text()


def test_rich_renders_the_line_itself():
    p = Progress("r1", live=False)
    p.on_power(time.time(), 4.0)
    assert p.__rich__().plain == p.text()
    console.console.print(p)  # rich renders the live object itself
