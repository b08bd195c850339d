"""Power measurement that runs on the device or the laptop: meters, the sampler thread, traces, energy.

Everything in this package keeps to Python 3.6 syntax (the Jetson TX2 is frozen at JetPack 4.6) and
imports each meter's optional dependency (jtop, serial, pynvml) only when that meter is opened.
"""
