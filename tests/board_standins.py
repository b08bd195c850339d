"""A stand-in Jetson's power-mode tools, first on PATH: `nvpmodel`, `jetson_clocks` and `sudo` executables
over a JSON state file, and an INA3221 sysfs tree whose VDD_IN the nvpmodel stand-in sets to its mode's draw.

The modes follow a TX2's list (`nvpmodel -p --verbose` prints `POWER_MODEL: ID=N NAME=...` lines as the real
tool does); mode 3 prompts for a reboot as AGX Orin's nvpmodel does, and with an empty stdin changes nothing.
`jetson_clocks` pins: it sets `locked` (and `--store`/`--restore` keep and bring back the previous value).
`sudo -n` runs its command unless the state says `sudo: false` (then it refuses, as without a sudoers rule);
`sudo -n -l CMD` answers the same way without running CMD. Every call is logged in the state's `calls`.
"""
import json
import os
import stat
import sys

MODES = {0: ("MAXN", 15000), 1: ("MAXQ", 7500), 2: ("MAXP_CORE_ALL", 10000), 3: ("MAXP_CORE_ARM", 9000)}
REBOOT_MODE = 3

_COMMON = r'''#!%(python)s
import json, os, sys
STATE = %(state)r
def load():
    with open(STATE) as fh:
        return json.load(fh)
def save(s):
    tmp = STATE + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(s, fh)
    os.replace(tmp, STATE)
s = load()
s["calls"].append([os.path.basename(sys.argv[0])] + sys.argv[1:])
save(s)
'''

NVPMODEL = r'''
MODES = {int(k): v for k, v in s["modes"].items()}
args = sys.argv[1:]
if args[:1] == ["-q"]:
    print("NV Fan Mode:quiet")
    print("NV Power Mode: %s" % MODES[s["mode"]][0])
    print(s["mode"])
elif args[:1] == ["-p"]:
    for i, (name, _) in sorted(MODES.items()):
        print("NVPM VERB: POWER_MODEL: ID=%d NAME=%s" % (i, name))
elif args[:1] == ["-m"]:
    if not s.get("root"):
        print("NVPM ERROR: failed to open /sys/... Permission denied")
        sys.exit(1)
    new = int(args[1])
    if new not in MODES:
        print("NVPM ERROR: Invalid mode %d" % new)
        sys.exit(1)
    if new == s["reboot_mode"] and new != s["mode"]:
        sys.stdout.write("NVPM WARN: Reboot required for changing to this power mode: %d\n"
                         "NVPM WARN: DO YOU WANT TO REBOOT NOW? enter YES/yes to confirm:\n" % new)
        sys.stdout.flush()
        answer = sys.stdin.readline().strip()
        if answer.lower() != "yes":
            print("NVPM ERROR: bad input!")
            sys.exit(1)
        s["rebooted"] = True
    s["mode"] = new
    s["locked"] = False  # a new mode brings its own default clocks
    with open(s["power_file"], "r+") as fh:
        fh.write("%08d\n" % MODES[new][1])
    save(s)
'''

JETSON_CLOCKS = r'''
if not s.get("root"):
    print("jetson_clocks: must be run as root")
    sys.exit(1)
args = sys.argv[1:]
if args[:1] == ["--store"]:
    s["stored"] = s["locked"]
elif args[:1] == ["--restore"]:
    s["locked"] = s.get("stored", False)
else:
    s["locked"] = True
save(s)
'''

SUDO = r'''
args = sys.argv[1:]
listing = False
while args and args[0].startswith("-"):
    listing = listing or args[0] == "-l"
    args = args[1:]
if not s["sudo"]:
    sys.stderr.write("sudo: a password is required\n")
    sys.exit(1)
if listing:
    print(" ".join(args))
    sys.exit(0)
s["root"] = True
save(s)
try:
    rc = __import__("subprocess").call(args)
finally:
    s = load()
    s["root"] = False
    save(s)
sys.exit(rc)
'''


class StandinBoard:
    """The stand-in's bin folder (put it first on PATH), its state file and its power tree."""

    def __init__(self, folder, mode=2, sudo=True):
        folder = str(folder)
        self.bin = os.path.join(folder, "bin")
        self.state = os.path.join(folder, "board-state.json")
        self.tree = os.path.join(folder, "sys")
        iio = os.path.join(self.tree, "sys/bus/i2c/drivers/ina3221x/0-0041/iio:device0")
        os.makedirs(iio)
        os.makedirs(self.bin)
        with open(os.path.join(iio, "rail_name_0"), "w") as fh:
            fh.write("VDD_IN\n")
        power_file = os.path.join(iio, "in_power0_input")
        with open(power_file, "w") as fh:
            fh.write("%08d\n" % MODES[mode][1])
        self.save({"mode": mode, "modes": MODES, "reboot_mode": REBOOT_MODE, "locked": False, "sudo": sudo,
                   "root": False, "calls": [], "power_file": power_file})
        for name, text in (("nvpmodel", NVPMODEL), ("jetson_clocks", JETSON_CLOCKS), ("sudo", SUDO)):
            path = os.path.join(self.bin, name)
            with open(path, "w") as fh:
                fh.write(_COMMON % {"python": sys.executable, "state": self.state} + text)
            os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)

    @property
    def meter(self):
        return "ina3221:VDD_IN?root=" + self.tree

    def load(self):
        with open(self.state) as fh:
            return json.load(fh)

    def save(self, state):
        with open(self.state, "w") as fh:
            json.dump(state, fh)

    def set(self, **changes):
        state = self.load()
        state.update(changes)
        self.save(state)

    def path(self, rest=None):
        return self.bin + os.pathsep + (rest if rest is not None else os.environ.get("PATH", ""))
