"""A stand-in for jetson-stats' client (`from jtop import jtop`) whose service already runs at its own interval.

The real service keeps the first client's interval; later clients read it back from `jetson.interval`
(rbonghi/jetson_stats `jtop/jtop.py`). `install(monkeypatch, power, served_s)` puts this module in
`sys.modules['jtop']` for one test.
"""
import sys
import types


def install(monkeypatch, power, served_s, version="4.3.2"):
    module = types.ModuleType("jtop")
    module.__version__ = version

    class Jtop:
        def __init__(self, interval=1.0):
            self.interval_user = interval
            self.interval = served_s
            self.power = power
            self.running = False

        def start(self):
            self.running = True

        def ok(self):
            return self.running

        def close(self):
            self.running = False

    module.jtop = Jtop
    monkeypatch.setitem(sys.modules, "jtop", module)
    return module
