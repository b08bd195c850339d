"""Each Jetson's real power-monitor layout, tegrastats line and jtop `power` shape, with its documented total.

Layouts (driver, bus-address, channel labels, units) follow connorimes/energymon `jetson/JetsonPowerRails.md`
(NVIDIA L4T 32.6.1/34.1 power guides, the L4T device trees, forum /t/223111 for the AGX Orin monitors), the
Linux `ina3221` hwmon documentation, and jetson-stats `jtop/core/power.py` (7.2.2: Thor's INA238 `VIN` in
uW). The values of a tree are the ones of the same board's real tegrastats line, split into V x I where
the driver gives volts and amps (the TX2 carrier monitors' values are made up: the source line has none).
The rail fields of each line are verbatim from its source; where the source quotes only those, the fields
before them follow the board's format (RAM, CPU, temperatures), so that the parser must skip them.
`*_total_w` is what the board's rule (hw/meters/rails.py) must give.
"""
import os

# -- real tegrastats lines ---------------------------------------------------------------------------
# FindHao/tx-utils issue #3 (TX2, L4T R32.7).
TX2_LINE = ("RAM 2303/7854MB (lfb 1036x4MB) SWAP 0/3927MB (cached 0MB) CPU [3%@345,off,off,1%@345,1%@345,"
            "0%@345] EMC_FREQ 0%@1866 GR3D_FREQ 0%@114 APE 150 PLL@36.5C MCPU@36.5C PMIC@100C Tboard@32C "
            "GPU@34.5C BCPU@36.5C thermal@35.3C Tdiode@33.5C VDD_SYS_GPU 153/158 VDD_SYS_SOC 536/547 "
            "VDD_4V0_WIFI 633/527 VDD_IN 3140/3208 VDD_SYS_CPU 536/590 VDD_SYS_DDR 557/601")
# jetson_stats `tests/tegrastats` (AGX Xavier, L4T R32).
XAVIER_LINE = ("RAM 3000/15823MB (lfb 2915x4MB) SWAP 0/7911MB (cached 0MB) CPU [1%@1190,0%@1190,off,off,off,off,"
               "off,off] EMC_FREQ 0%@2133 GR3D_FREQ 0%@1377 APE 150 MTS fg 0% bg 0% AO@35C GPU@35.5C "
               "Tdiode@37.5C PMIC@100C AUX@34.5C CPU@36C thermal@35.65C Tboard@35C GPU 120/100 CPU 468/450 "
               "SOC 937/900 CV 0/0 VDDRQ 312/234 SYS5V 1458/1400")
# jetson_stats #51 (Nano 4 GB, L4T R32).
NANO_LINE = ("RAM 1529/3964MB (lfb 124x4MB) SWAP 0/1982MB (cached 0MB) IRAM 0/252kB(lfb 252kB) "
             "CPU [8%@1479,2%@1479,0%@1479,0%@1479] EMC_FREQ 3%@1600 GR3D_FREQ 0%@921 APE 25 PLL@31.5C "
             "CPU@33C PMIC@100C GPU@32.5C AO@40.5C thermal@32.75C POM_5V_IN 1996/1996 POM_5V_GPU 0/0 "
             "POM_5V_CPU 317/317")
# Orin Nano / NX, L4T R36 (the form every public Orin parser tests).
ORIN_NANO_LINE = ("11-25-2026 11:40:00 RAM 2303/7620MB (lfb 2x4MB) SWAP 0/3810MB (cached 0MB) CPU [2%@729,1%@729,"
                  "0%@729,0%@729,off,off] EMC_FREQ 0%@2133 GR3D_FREQ 0%@[305] VIC_FREQ 115 APE 200 cpu@47.5C "
                  "soc2@45.2C soc0@46.1C gpu@46.5C tj@47.5C soc1@46.4C VDD_IN 4834mW/4834mW "
                  "VDD_CPU_GPU_CV 556mW/556mW VDD_SOC 1426mW/1426mW")
# AGX Orin: the rail fields (3150/14312/4968/1091 mW) are verbatim from a public README's tegrastats capture
# dated 11-21-2025 (an AGX Orin line in the R35/R36 `mW/mW` form, `GR3D_FREQ 14%@[407,407]`); the fields
# before them are in the board's format but not from that capture. (It was credited to jetson_stats
# `tests/tegrastats`, which holds no such line: research/meters-outside-2026-12.md, finding 4.)
AGX_ORIN_JP5_LINE = ("02-21-2023 10:19:42 RAM 2891/30536MB (lfb 6559x4MB) SWAP 0/15268MB (cached 0MB) "
                     "CPU [1%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729] GR3D_FREQ 0% cpu@46.5C "
                     "soc2@43.656C soc0@44.312C gpu@42.25C tj@46.5C soc1@43.343C VDD_GPU_SOC 3150mW/2971mW "
                     "VDD_CPU_CV 14312mW/12415mW VIN_SYS_5V0 4968mW/5048mW VDDQ_VDD2_1V8AO 1091mW/1091mW")
# jetson_stats `jtop/tests/test_06_tegra_parse.py`, commit 2386a023: "Real tegrastats line from a Jetson
# AGX Orin Developer Kit running JetPack 7.2 (L4T R39.2)": three values per rail.
AGX_ORIN_JP72_LINE = ("RAM 3581/62841MB (lfb 12x4MB) SWAP 0/31421MB (cached 0MB) CPU [0%@1728,0%@1728,0%@1728,"
                      "0%@1728,0%@1728,0%@1728,0%@1728,0%@1728,0%@1728,0%@1728,0%@1728,0%@1728] cpu@52.968C/52.968C "
                      "VDD_GPU_SOC 5139mW/5139mW/5139mW VDD_CPU_CV 3268mW/3268mW/3268mW "
                      "VIN_SYS_5V0 5500mW/5500mW/5500mW")
# Public Thor (L4T R38, JetPack 7) parser tests in the code index and WendyOS PR #1316 (GPU rail renamed
# VDD_GPU; VIN is the carrier board's INA238).
THOR_LINE = ("RAM 4589/125772MB (lfb 15x4MB) SWAP 0/0MB (cached 0MB) CPU [0%@972,0%@972,0%@972] cpu@41.3C "
             "gpu@40.1C tj@41.3C VDD_GPU 0mW/0mW VDD_CPU_SOC_MSS 5535mW/5535mW VIN_SYS_5V0 5040mW/5040mW "
             "VIN 16802mW/16802mW")
# Thor, JetPack 7, at idle: quoted as "real output" (05-14-2026) in a public Thor monitor's repository
# (research/meters-outside-2026-12.md, finding 1). VDD_GPU reads below zero (the monitor's offset).
THOR_IDLE_RAILS = "VDD_GPU -392mW/-392mW VDD_CPU_SOC_MSS 3924mW/3835mW VIN_SYS_5V0 5064mW/5055mW VIN 15004mW/15096mW"
THOR_IDLE_LINE = "RAM 4102/125772MB (lfb 15x4MB) SWAP 0/0MB (cached 0MB) CPU [0%@972,0%@972] " + THOR_IDLE_RAILS


class Board:
    """One board: its monitor tree, tegrastats line, jtop `power` value and the totals they must give."""

    def __init__(self, name, tree, line, line_total_w, jtop, jtop_total_w, tree_total_w, scope="module"):
        self.name, self.tree, self.line, self.jtop = name, tree, line, jtop
        self.line_total_w, self.jtop_total_w, self.tree_total_w, self.scope = (
            line_total_w, jtop_total_w, tree_total_w, scope)

    def __repr__(self):
        return self.name


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)


def iio_tree(root, devices, driver="ina3221x"):
    """L4T R32 iio layout: {bus-addr: [(rail, mW)]} -> rail_name_K, in_powerK_input (mW)."""
    for n, (dev, chans) in enumerate(sorted(devices.items())):
        iio = os.path.join(root, "sys/bus/i2c/drivers", driver, dev, "iio:device%d" % n)
        for k, (name, mw) in enumerate(chans):
            write(os.path.join(iio, "rail_name_%d" % k), name + "\n")
            write(os.path.join(iio, "in_power%d_input" % k), "%d\n" % mw)
            write(os.path.join(iio, "in_voltage%d_input" % k), "19000\n")
            write(os.path.join(iio, "in_current%d_input" % k), "%d\n" % (mw * 1000 // 19000))
    return root


def hwmon_tree(root, devices, update_ms=None):
    """L4T R35+ hwmon layout: {bus-addr: [(label, mV, mA)]} -> inK_label, inK_input, currK_input; in7 sum."""
    for n, (dev, chans) in enumerate(sorted(devices.items())):
        hw = os.path.join(root, "sys/bus/i2c/drivers/ina3221", dev, "hwmon", "hwmon%d" % (n + 1))
        for k, (label, mv, ma) in enumerate(chans, start=1):
            write(os.path.join(hw, "in%d_label" % k), label + "\n")
            write(os.path.join(hw, "in%d_input" % k), "%d\n" % mv)
            write(os.path.join(hw, "curr%d_input" % k), "%d\n" % ma)
        write(os.path.join(hw, "in7_label"), "sum of shunt voltages\n")
        write(os.path.join(hw, "in7_input"), "40\n")
        write(os.path.join(hw, "curr7_input"), "400\n")
        if update_ms is not None:
            write(os.path.join(hw, "update_interval"), "%d\n" % update_ms)
    return root


def ina238_tree(root, dev, uw, mv, ma):
    """Thor's INA238 hwmon node: power1_input in uW, in1_input mV, curr1_input mA (no label)."""
    hw = os.path.join(root, "sys/bus/i2c/drivers/ina238", dev, "hwmon", "hwmon9")
    write(os.path.join(hw, "power1_input"), "%d\n" % uw)
    write(os.path.join(hw, "in1_input"), "%d\n" % mv)
    write(os.path.join(hw, "curr1_input"), "%d\n" % ma)
    return root


# TX2 dev kit: module monitors 0-0040/0-0041 and the carrier's 0-0042/0-0043 (energymon JetsonPowerRails.md).
TX2_DEVKIT = {
    "0-0040": [("VDD_SYS_GPU", 153), ("VDD_SYS_SOC", 536), ("VDD_4V0_WIFI", 633)],
    "0-0041": [("VDD_IN", 3140), ("VDD_SYS_CPU", 536), ("VDD_SYS_DDR", 557)],
    "0-0042": [("VDD_MUX", 2100), ("VDD_5V0_IO_SYS", 900), ("VDD_3V3_SYS", 450)],
    "0-0043": [("VDD_3V3_IO_SLP", 120), ("VDD_1V8_IO", 60), ("VDD_3V3_SYS_M2", 30)],
}
AGX_XAVIER = {"1-0040": [("GPU", 120), ("CPU", 468), ("SOC", 937)],
              "1-0041": [("CV", 0), ("VDDRQ", 312), ("SYS5V", 1458)]}
NANO = {"6-0040": [("POM_5V_IN", 1996), ("POM_5V_GPU", 0), ("POM_5V_CPU", 317)]}
ORIN_NANO = {"1-0040": [("VDD_IN", 5000, 967), ("VDD_CPU_GPU_CV", 5000, 111), ("VDD_SOC", 5000, 285)]}
AGX_ORIN_JP5 = {"1-0040": [("VDD_GPU_SOC", 5000, 630), ("VDD_CPU_CV", 5000, 2862), ("VIN_SYS_5V0", 4968, 1000)],
                "1-0041": [("NC", 0, 0), ("VDDQ_VDD2_1V8AO", 1800, 606), ("NC", 0, 0)]}
AGX_ORIN_JP72 = {"1-0040": [("VDD_GPU_SOC", 5000, 1028), ("VDD_CPU_CV", 5000, 654), ("VIN_SYS_5V0", 5000, 1100)],
                 "1-0041": [("NC", 0, 0), ("VDDQ_VDD2_1V8AO", 1800, 606), ("NC", 0, 0)]}
THOR = {"1-0040": [("VDD_GPU", 5000, -78), ("VDD_CPU_SOC_MSS", 5000, 1107), ("VIN_SYS_5V0", 5040, 1000)]}


def _thor_tree(root):
    hwmon_tree(root, THOR, update_ms=20)
    return ina238_tree(root, "2-0044", 16802000, 19800, 849)


def _rail(power_mw, volt=5000):
    return {"online": True, "type": "INA3221", "status": "ok", "volt": volt, "curr": power_mw * 1000 // volt,
            "warn": 32760, "crit": 32760, "power": power_mw, "avg": power_mw}


# jtop `power` values. 4.3.2 (what Python 3.6 installs) and 7.x move the input rail to `tot` with its name;
# without an input rail `tot` is the sum of every rail, unnamed (jetson-stats `jtop/core/power.py`).
JTOP_TX2 = {"rail": {n: _rail(mw, 19000) for n, mw in TX2_DEVKIT["0-0040"] + TX2_DEVKIT["0-0041"] if n != "VDD_IN"},
            "tot": dict(_rail(3140, 19000), name="VDD_IN")}
JTOP_XAVIER = {"rail": {n: _rail(mw) for dev in AGX_XAVIER.values() for n, mw in dev},
               "tot": {"power": 3295, "avg": 3295}}
JTOP_ORIN_NANO = {"rail": {"VDD_CPU_GPU_CV": _rail(555), "VDD_SOC": _rail(1425)},
                  "tot": dict(_rail(4835), name="VDD_IN")}
# jetson-stats <= 7.2.1 on an AGX Orin also lists the USB-C PD supply (negotiated, not measured: PR #900)
# and sums it, with VDDQ_VDD2_1V8AO, into `tot`; the real jtop log of jetson_stats #428 names it `1-00081`
# (from `ucsi-source-psy-1-00081`).
JTOP_AGX_ORIN = {"rail": {"VDD_GPU_SOC": _rail(5139), "VDD_CPU_CV": _rail(3268), "VIN_SYS_5V0": _rail(5500),
                          "VDDQ_VDD2_1V8AO": _rail(1091, 1800),
                          "1-00081": {"online": True, "type": "SYSTEM", "volt": 20000, "curr": 3000,
                                          "power": 60000, "avg": 60000}},
                 "tot": {"power": 74998, "avg": 74998}}
# jetson-stats 7.2.2 on Thor: the INA238 VIN is the total.
JTOP_THOR = {"rail": {"VDD_GPU": _rail(0), "VDD_CPU_SOC_MSS": _rail(5535), "VIN_SYS_5V0": _rail(5040)},
             "tot": dict(_rail(16802, 19800), name="VIN")}
# jetson-stats 7.2.0 (master f41d5cad; its power.py scans INA3221 devices only) on the Thor idle tree below:
# the module's rails, and a `tot` that is their unnamed sum (the shape its own code gave when run over that
# tree, research/meters-outside-2026-12.md, Table 2). No VIN.
JTOP_THOR_720 = {"rail": {"VDD_GPU": _rail(-390), "VDD_CPU_SOC_MSS": _rail(3925), "VIN_SYS_5V0": _rail(5064, 5064)},
                 "tot": {"power": 8599, "avg": 8599}}
# The same Thor at idle as sysfs: the INA3221 module rails (V x I of the line's values) and the INA238 VIN.
THOR_IDLE = {"1-0040": [("VDD_GPU", 5000, -78), ("VDD_CPU_SOC_MSS", 5000, 785), ("VIN_SYS_5V0", 5064, 1000)]}


def thor_idle_tree(root, vin=True):
    hwmon_tree(root, THOR_IDLE, update_ms=20)
    return ina238_tree(root, "2-0044", 15004000, 19800, 758) if vin else root


BOARDS = [
    Board("TX2 R32", lambda root: iio_tree(root, TX2_DEVKIT), TX2_LINE, 3.140, JTOP_TX2, 3.140, 3.140),
    Board("AGX Xavier R32", lambda root: iio_tree(root, AGX_XAVIER), XAVIER_LINE, 3.295, JTOP_XAVIER, 3.295, 3.295),
    Board("Nano R32", lambda root: iio_tree(root, NANO), NANO_LINE, 1.996, None, None, 1.996),
    Board("Orin Nano R36", lambda root: hwmon_tree(root, ORIN_NANO, update_ms=20), ORIN_NANO_LINE, 4.834,
          JTOP_ORIN_NANO, 4.835, 4.835),
    Board("AGX Orin JP5", lambda root: hwmon_tree(root, AGX_ORIN_JP5), AGX_ORIN_JP5_LINE, 3.150 + 14.312 + 4.968,
          None, None, 3.150 + 14.310 + 4.968),
    Board("AGX Orin JP7.2", lambda root: hwmon_tree(root, AGX_ORIN_JP72), AGX_ORIN_JP72_LINE, 5.139 + 3.268 + 5.500,
          JTOP_AGX_ORIN, 5.139 + 3.268 + 5.500, 5.140 + 3.270 + 5.500),
    Board("Thor R38", _thor_tree, THOR_LINE, 16.802, JTOP_THOR, 16.802, 16.802, scope="board"),
]
